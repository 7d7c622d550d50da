"""The Spanish pages rendered on the server: the form, a name's page, /comparar, the map and the charts."""

// Progressive enhancement: the form works without this file (GET, rendered on the server).
// With it, each batch is fetched in the background (header Toponimo-Parcial: 1 returns only
// the results part, rendered by the same template), swapped in, and pushed as a history entry
// whose URL repeats it. It also adds copy buttons, favourites (localStorage), a debounced
// temperature slider and state choice on the map. No inline code: the page runs under a CSP.
"use strict";

const form = document.getElementById("formulario");
const temperatura = document.getElementById("temperature");
const temperaturaValor = document.getElementById("temperatura-valor");
const semilla = document.getElementById("seed");
const modelo = document.getElementById("model");
const selectorEstado = document.getElementById("estado-elegido");  // absent without conditioned models
const defectos = new URLSearchParams(form.dataset.defectos);   // the server's default per field
const CLAVE_FAVORITOS = "toponimo:favoritos";
const ESPERA_DESLIZADOR_MS = 350;

function resultados() { return document.getElementById("resultados"); }

// the URL's query of a request: every field, "nueva" for a new seed (the server picks it)
function consultaDelFormulario(nueva) {
  const params = new URLSearchParams();
  for (const [clave, valor] of new FormData(form)) {
    if (clave !== "novel" && valor !== "") params.set(clave, valor);
  }
  params.set("novel", document.getElementById("novel").checked ? "true" : "false");
  if (nueva) { params.delete("seed"); params.set("nueva", "1"); }
  return params;
}

// errors come in the results part as <li data-campo>; each goes next to its field too
function marcarErrores(seccion) {
  for (const viejo of form.querySelectorAll(".error-campo")) { viejo.hidden = true; viejo.textContent = ""; }
  for (const campo of form.querySelectorAll("[aria-invalid]")) campo.removeAttribute("aria-invalid");
  for (const item of seccion.querySelectorAll("[data-campo]")) {
    const nombre = item.dataset.campo;
    const campo = document.getElementById(nombre === "estado" ? "estado-elegido" : nombre);
    const hueco = document.getElementById(`error-${nombre}`);
    if (!campo || !hueco) continue;
    campo.setAttribute("aria-invalid", "true");
    hueco.textContent = (hueco.textContent + " " + item.textContent).trim();
    hueco.hidden = false;
    const pliegue = campo.closest("details");
    if (pliegue) pliegue.open = true;
  }
}

function mostrar(html) {
  const plantilla = document.createElement("template");
  plantilla.innerHTML = html;
  const nueva = plantilla.content.getElementById("resultados");
  if (!nueva) return null;
  resultados().replaceWith(nueva);
  marcarErrores(nueva);
  if (nueva.dataset.semilla) semilla.value = nueva.dataset.semilla;
  decorar();
  return nueva;
}

// a field the URL leaves out shows what the server shows for it: its default, or empty
function rellenarFormulario(params) {
  for (const campo of form.elements) {
    if (!campo.name || campo.type === "hidden" || campo.type === "submit") continue;
    const valor = params.get(campo.name) ?? defectos.get(campo.name) ?? "";
    if (campo.type === "checkbox") campo.checked = valor !== "false";
    else if (campo === temperatura) ponerTemperatura(valor);
    else campo.value = valor;
  }
  actualizarEstado();
}

// why an answer is not the results part: a busy worker explains itself in Spanish plain text
// (load shedding, the scheduler), a proxy's 503 gets our words; anything else is a fault
function fallo(respuesta, texto) {
  if (respuesta.status !== 503) {
    return `Algo falló en el servidor (error ${respuesta.status}); inténtalo de nuevo en un momento.`;
  }
  const propio = respuesta.headers.get("Content-Type")?.startsWith("text/plain") && texto.trim();
  return propio || "El servidor está muy ocupado; inténtalo de nuevo en unos segundos.";
}

// a failed request leaves the batch on screen (and its URL): the message goes above it
function avisarFallo(texto) {
  const parrafo = document.createElement("p");
  parrafo.className = "error";
  parrafo.textContent = texto;
  resultados().querySelector("#errores").replaceChildren(parrafo);
}

// the request on its way, if any: a newer one (or Back) aborts it, so its answer never
// replaces a newer batch; one already read but not yet shown is dropped by the check below
let pendiente = null;

async function pedir(params) {
  pendiente?.abort();
  const esta = new AbortController();
  pendiente = esta;
  form.setAttribute("aria-busy", "true");
  try {
    const r = await fetch(`/?${params}`, { headers: { "Toponimo-Parcial": "1" },
                                           signal: esta.signal });
    const html = await r.text();
    if (esta.signal.aborted) return;
    // the results part comes with a batch and with the page's own errors (422, 404...)
    const seccion = mostrar(html);
    if (!seccion) {
      avisarFallo(fallo(r, html));
      return;
    }
    // a batch's URL holds every setting and its seed (the server's redirect gave it)
    const url = seccion.dataset.consulta ? `/?${seccion.dataset.consulta}` : `/?${params}`;
    history.pushState({ html }, "", url);
    // on a phone the open options can push the names out of sight: show that they came
    if (seccion.getBoundingClientRect().top > window.innerHeight) seccion.scrollIntoView();
  } catch {
    if (esta.signal.aborted) return;   // replaced by a newer request: nothing went wrong
    avisarFallo("No se pudo hablar con el servidor; inténtalo de nuevo.");
  } finally {
    if (pendiente === esta) pendiente = null;
    if (!pendiente) form.removeAttribute("aria-busy");   // unless a newer one is on its way
  }
}

window.addEventListener("popstate", (evento) => {
  // the batch Back or Forward returns to wins over one on its way or about to be asked
  clearTimeout(espera);
  pendiente?.abort();
  pendiente = null;
  rellenarFormulario(new URLSearchParams(location.search));
  if (evento.state && evento.state.html) mostrar(evento.state.html);
});

// the state only means something to the models trained by state: a disabled select is not sent
function actualizarEstado() {
  if (!selectorEstado) return;
  const opcion = modelo.selectedOptions[0];
  selectorEstado.disabled = !opcion || opcion.dataset.porEstado !== "si";
  marcarEnMapa(selectorEstado.disabled ? "" : selectorEstado.value);
}
modelo.addEventListener("change", actualizarEstado);
selectorEstado?.addEventListener("change", actualizarEstado);

// the map shows the state the form will ask for (the list, a click, Back or Forward set it)
const mapa = document.getElementById("mapa-estados");
function marcarEnMapa(estado) {
  if (!mapa) return;
  for (const enlace of mapa.querySelectorAll("a[data-estado]")) {
    const es = enlace.dataset.estado === estado;
    enlace.querySelector("path").classList.toggle("elegido", es);
    if (es) enlace.setAttribute("aria-current", "true");
    else enlace.removeAttribute("aria-current");
  }
}

// a state on the map: that state, with a model that knows states, as a new batch
if (mapa) {
  mapa.addEventListener("click", (evento) => {
    const enlace = evento.target.closest("a[data-estado]");
    if (!enlace) return;
    evento.preventDefault();
    const destino = new URL(enlace.getAttribute("href"), location.href).searchParams;  // an SVG link
    modelo.value = destino.get("model");
    actualizarEstado();
    selectorEstado.value = enlace.dataset.estado;
    marcarEnMapa(enlace.dataset.estado);
    pedir(consultaDelFormulario(true));
  });
}

// the slider has notches every PASO; a temperature between them (0.123, or 0.01 below the
// first), which the URL may ask for, is kept as it is (step "any") until the slider is moved,
// so that the form sends again the temperature of the names on screen (as templates/index.html)
const PASO = 0.05;
function enMuesca(valor) {
  const muescas = valor / PASO;
  return valor >= PASO && Math.abs(muescas - Math.round(muescas)) < 1e-9;
}
function ponerTemperatura(texto) {
  const valor = Number(texto);
  const muesca = texto !== "" && enMuesca(valor);
  temperatura.step = muesca ? String(PASO) : "any";
  temperatura.min = muesca ? String(PASO) : "0";
  temperatura.value = texto;
  temperaturaValor.value = muesca ? valor.toFixed(2) : (Number.isFinite(valor) ? String(valor) : texto);
}

let espera = null;
temperatura.addEventListener("input", () => {
  if (temperatura.step === "any") {   // moved: back to the notches, from the nearest one
    const valor = Math.round(Number(temperatura.value) / PASO) * PASO;
    temperatura.step = temperatura.min = String(PASO);
    temperatura.value = Math.min(Number(temperatura.max), Math.max(PASO, valor)).toFixed(2);
  }
  temperaturaValor.value = Number(temperatura.value).toFixed(2);
  clearTimeout(espera);
  // one request once the slider rests, with the seed on screen: only the temperature changes
  espera = setTimeout(() => pedir(consultaDelFormulario(false)), ESPERA_DESLIZADOR_MS);
});

form.addEventListener("submit", (evento) => {
  evento.preventDefault();
  clearTimeout(espera);
  const boton = evento.submitter;
  pedir(consultaDelFormulario(!boton || boton.id !== "repetir"));
});

// copy one name or the list; favourites kept in this browser
function avisar(texto) {
  let aviso = document.getElementById("aviso");
  if (!aviso) {
    aviso = document.createElement("span");
    aviso.id = "aviso";
    aviso.setAttribute("role", "status");
    document.getElementById("acciones").append(aviso);
  }
  aviso.textContent = texto;
}

async function copiar(texto, hecho) {
  try {
    await navigator.clipboard.writeText(texto);
    avisar(hecho);
  } catch {
    avisar("El navegador no dejó copiar; selecciona el texto a mano.");
  }
}

// what this browser kept may be anything (an old version, an edit by hand): only a list, and
// in it only a name with a link to its page, so that favourites never stop a batch showing
function leerFavoritos() {
  let guardados;
  try { guardados = JSON.parse(localStorage.getItem(CLAVE_FAVORITOS)); } catch { return []; }
  return Array.isArray(guardados) ? guardados.filter((fav) => typeof fav?.nombre === "string"
    && typeof fav.enlace === "string" && fav.enlace.startsWith("/nombre/")) : [];
}

function guardarFavoritos(lista) {
  try { localStorage.setItem(CLAVE_FAVORITOS, JSON.stringify(lista)); } catch { /* private mode */ }
  pintarFavoritos();
}

function pintarFavoritos() {
  const seccion = document.getElementById("favoritos");
  const lista = leerFavoritos();
  seccion.hidden = lista.length === 0;
  document.getElementById("lista-favoritos").replaceChildren(...lista.map((fav) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = fav.enlace;
    a.textContent = fav.nombre;
    const quitar = boton("Quitar", `Quitar ${fav.nombre} de favoritos`, () =>
      guardarFavoritos(leerFavoritos().filter((f) => f.nombre !== fav.nombre)));
    li.append(a, " ", quitar);
    return li;
  }));
  for (const estrella of document.querySelectorAll("#nombres button.favorito")) {
    estrella.setAttribute("aria-pressed", String(lista.some((f) => f.nombre === estrella.dataset.nombre)));
  }
}

function boton(texto, etiqueta, accion) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = texto;
  b.setAttribute("aria-label", etiqueta);
  b.addEventListener("click", accion);
  return b;
}

function decorar() {
  const nombres = [...document.querySelectorAll("#nombres .nombre")];
  for (const enlace of nombres) {
    const nombre = enlace.textContent;
    const copia = boton("Copiar", `Copiar ${nombre}`, () => copiar(nombre, `«${nombre}» copiado.`));
    const estrella = boton("★", `Guardar ${nombre} en favoritos`, () => {
      const lista = leerFavoritos();
      guardarFavoritos(lista.some((f) => f.nombre === nombre)
        ? lista.filter((f) => f.nombre !== nombre)
        : [...lista, { nombre, enlace: enlace.getAttribute("href") }]);
    });
    estrella.classList.add("favorito");
    estrella.dataset.nombre = nombre;
    enlace.parentElement.querySelector(".insignia").after(copia, estrella);
  }
  const acciones = document.getElementById("acciones");
  if (acciones && nombres.length) {
    acciones.prepend(boton("Copiar la lista", "Copiar la lista de nombres",
      () => copiar(nombres.map((e) => e.textContent).join("\n"), "Lista copiada.")));
  }
  pintarFavoritos();
}

// the first batch: its URL (with the seed) replaces the bare address, and Back can return to it
const primera = resultados();
history.replaceState({ html: primera.outerHTML }, "",
  primera.dataset.consulta ? `/?${primera.dataset.consulta}` : location.href);
actualizarEstado();
decorar();

// Progressive enhancement: the form works without this file (GET, rendered on the server);
// with it, the list updates in place through /api/names and the page is never reloaded.
"use strict";

const form = document.getElementById("formulario");
const lista = document.getElementById("nombres");
const estado = document.getElementById("estado");
const errores = document.getElementById("errores");
const plantilla = document.getElementById("plantilla-nombre");
const MENSAJES = JSON.parse(document.getElementById("mensajes").textContent);
const temperatura = document.getElementById("temperature");
const temperaturaValor = document.getElementById("temperatura-valor");
const selectorEstado = document.getElementById("estado-elegido");  // absent without conditioned models

// mirrors mensaje() in app/pages.py: code first, then field, {placeholders} from the context
function mensaje(field, code, context = {}) {
  const ctx = { ...context };
  if (ctx.unknown) ctx.chars = ctx.unknown.map((ch) => `«${ch}»`).join(", ");
  const plantillaTexto = MENSAJES[code] || MENSAJES[field] || MENSAJES.desconocido;
  return plantillaTexto.replace(/\{(\w+)\}/g, (todo, clave) => (clave in ctx ? ctx[clave] : todo));
}

function parametros() {
  const params = new URLSearchParams();
  for (const [clave, valor] of new FormData(form)) {
    if (clave !== "novel" && valor !== "") params.set(clave, valor);
  }
  params.set("novel", document.getElementById("novel").checked ? "true" : "false");
  return params;
}

function mostrarErrores(textos) {
  errores.replaceChildren(...textos.map((texto) => {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = texto;
    return p;
  }));
}

function mostrarNombres(respuesta) {
  const items = respuesta.names.map((item) => {
    const li = plantilla.content.firstElementChild.cloneNode(true);
    li.querySelector(".nombre").textContent = item.name;
    const insignia = li.querySelector(".insignia");
    insignia.textContent = item.novel ? "nuevo" : "existe";
    insignia.className = `insignia ${item.novel ? "nuevo" : "existe"}`;
    li.querySelector(".para").textContent = item.estado ? `para ${item.estado}` : "";
    li.querySelector(".real").textContent = item.nearest.name;
    li.querySelector(".estado").textContent = item.nearest.estado ? ` (${item.nearest.estado})` : "";
    return li;
  });
  lista.replaceChildren(...items);
  let texto = `${respuesta.names.length} de ${respuesta.n_requested} nombres · ` +
    `modelo ${respuesta.model}${respuesta.estado ? ` · estado ${respuesta.estado}` : ""} · ` +
    `semilla ${respuesta.seed}`;
  if (!respuesta.complete) texto += " · solo se encontraron estos; prueba otra temperatura u otro inicio";
  estado.textContent = texto;
}

function erroresDeRespuesta(status, cuerpo) {
  if (status === 404) {
    const disponibles = (cuerpo && cuerpo.available || []).join(", ");
    return [mensaje("model", "", { disponibles })];
  }
  if (status === 422 && Array.isArray(cuerpo && cuerpo.detail)) {
    const textos = cuerpo.detail.map((e) => mensaje(String(e.loc[e.loc.length - 1]), e.type, e.ctx));
    return [...new Set(textos)];
  }
  return [MENSAJES.desconocido];
}

async function pedir() {
  const params = parametros();
  form.setAttribute("aria-busy", "true");
  try {
    const r = await fetch(`/api/names?${params}`, { headers: { Accept: "application/json" } });
    const cuerpo = await r.json().catch(() => null);
    if (r.ok) {
      mostrarErrores([]);
      mostrarNombres(cuerpo);
      history.replaceState(null, "", `?${params}`);
    } else {
      mostrarErrores(erroresDeRespuesta(r.status, cuerpo));
    }
  } catch {
    mostrarErrores([MENSAJES.red]);
  } finally {
    form.removeAttribute("aria-busy");
  }
}

// the state only means something to the models trained by state: a disabled select is not sent
function actualizarEstado() {
  if (!selectorEstado) return;
  const elegido = form.querySelector('input[name="model"]:checked');
  selectorEstado.disabled = !elegido || elegido.dataset.porEstado !== "si";
}

for (const radio of form.querySelectorAll('input[name="model"]')) {
  radio.addEventListener("change", actualizarEstado);
}
actualizarEstado();

temperatura.addEventListener("input", () => {
  temperaturaValor.value = Number(temperatura.value).toFixed(2);
});
temperatura.addEventListener("change", pedir);
form.addEventListener("submit", (evento) => {
  evento.preventDefault();
  pedir();
});

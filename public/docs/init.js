// Boots Swagger UI against the spec URL named on the container (kept out of the HTML so the
// page needs no inline script under its Content-Security-Policy).
window.addEventListener("load", () => {
  var container = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: container.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: true,
  });
});

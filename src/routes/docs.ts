import { getConfig } from "../config";
import { asyncApiDocument } from "../lib/asyncapi";
import { createRouter } from "./router";

const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>API documentation · Plant Community</title>
  <link rel="icon" href="/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
  <nav aria-label="API documents" style="font-family: sans-serif; padding: 12px 20px; border-bottom: 1px solid #ddd">
    <a href="/">Plant Community</a> ·
    HTTP routes below (OpenAPI: <a href="/api/openapi.json">/api/openapi.json</a>) ·
    WebSocket protocol (AsyncAPI 3.0): <a id="asyncapi-link" href="/api/asyncapi.json">/api/asyncapi.json</a>
  </nav>
  <main id="swagger-ui" data-spec-url="/api/openapi.json"></main>
  <script src="/vendor/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>`;

const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // Swagger UI sets inline style attributes.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

export function docsRoutes() {
  const app = createRouter();
  app.get("/docs", (c) => {
    c.header("Content-Security-Policy", DOCS_CSP);
    return c.html(DOCS_HTML);
  });
  // The WebSocket protocol, generated from the UserHub protocol's zod schemas (src/lib/asyncapi.ts).
  app.get("/asyncapi.json", (c) => {
    const config = getConfig(c.env);
    return c.json(asyncApiDocument({ publicApiUrl: config.PUBLIC_API_URL, version: config.APP_VERSION }));
  });
  return app;
}

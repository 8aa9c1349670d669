/**
 * `/docs`: the Scalar API reference over /openapi.json. Scalar's bundle is served from our own assets
 * (public/vendor, copied from node_modules by scripts/assets.mjs), fonts and its AI agent are off:
 * the page makes no request to any other origin.
 */
export function docsPage(): Response {
  const html = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>ChittyAuth API reference</title>
  <link rel="icon" href="data:,">
</head>
<body>
  <div id="app"></div>
  <script src="/vendor/scalar/standalone.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>`;
  return new Response(html, {
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy':
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
      'x-frame-options': 'DENY',
    },
  });
}

/** Kept out of the HTML so the CSP needs no inline scripts. */
export function docsInit(): Response {
  const js = `Scalar.createApiReference('#app', {
  url: '/openapi.json',
  withDefaultFonts: false,
  agent: { disabled: true },
  hideClientButton: false,
  telemetry: false,
  theme: 'default',
  metaData: { title: 'ChittyAuth API reference' },
});
`;
  return new Response(js, { headers: { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=300' } });
}

// Stand-in for checkbox.io's API server (server-side/site/server.js): listens on APP_PORT and answers every
// /api request with the MONGO_*, MAIL_* and APP_PORT variables it was started with. Secrets are reported
// only as "set"/"unset".
'use strict';
const http = require('http');

const VARS = ['APP_PORT', 'MONGO_IP', 'MONGO_PORT', 'MONGO_USER', 'MONGO_PASSWORD', 'MAIL_USER', 'MAIL_PASSWORD', 'MAIL_SMTP'];
const SECRET = new Set(['MONGO_PASSWORD', 'MAIL_PASSWORD']);

function environment() {
  const env = {};
  for (const name of VARS) {
    const value = process.env[name];
    if (value === undefined) {
      env[name] = null;
    } else if (SECRET.has(name)) {
      env[name] = value === '' ? 'unset' : 'set';
    } else {
      env[name] = value;
    }
  }
  return env;
}

const port = Number(process.env.APP_PORT || 3002);
http.createServer((req, res) => {
  if (!req.url.startsWith('/api')) {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: 'not found', path: req.url }));
    return;
  }
  const env = environment();
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({
    app: 'checkbox-standin',
    path: req.url,
    mongo_vars_seen: Object.keys(env).filter((k) => k.startsWith('MONGO_') && env[k] !== null),
    env,
  }));
}).listen(port, '127.0.0.1', () => {
  console.log(`checkbox-standin listening on 127.0.0.1:${port}`);
});

//! DigitalOcean droplets through the REST API v2: not built yet (issue "prod up").

// Markdown preview microservice (the project's stand-in for checkbox.io-micro-preview):
// POST /preview with JSON {"markdown": "..."} answers {"preview": "<html>"}; listens on PORT (default 3000).
const express = require('express');
const { marked } = require('marked');

const PORT = Number(process.env.PORT || 3000);

// Survey editors leave trailing spaces, which markdown would turn into hard line breaks: trim each line first.
function render(markdown) {
  const text = markdown
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
  return marked.parse(text);
}

const app = express();
app.use(express.json({ limit: '1mb' }));

app.post('/preview', (req, res) => {
  try {
    res.json({ preview: render(req.body.markdown) });
  } catch (e) {
    res.status(500).json({ preview: e.message });
  }
});

app.listen(PORT, () => {
  console.log(`preview service listening on port ${PORT}`);
});

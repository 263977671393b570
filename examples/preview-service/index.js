// Survey preview microservice (the project's stand-in for checkbox.io-micro-preview), with the same contract:
// POST /preview with JSON {"markdown": "<survey>"} answers {"preview": "<html>"}; a survey it cannot render
// is HTTP 500 {"preview": "<error message>"}. Listens on PORT (default 3000).
//
// A survey is marqdown, as checkbox.io's `marqdown.render` reads it: the lines before the first line that
// starts with `---` are a JSON5 header of options (e.g. `{NumberQuestions:true}`), the lines after it are
// the questions in markdown (`### ` starts a question). A document without that header is an error, exactly
// as in the original: JSON5 cannot parse what is not there.
const express = require('express');
const JSON5 = require('json5');
const { marked } = require('marked');

const PORT = Number(process.env.PORT || 3000);

// The header: every line up to the first one starting with `---` (undefined when there is none).
function readHeader(lines) {
  let header = '';
  for (const line of lines) {
    if (line.indexOf('---') === 0) {
      return header;
    }
    header += line;
  }
  return undefined;
}

// The survey: every line after the header's `---` line.
function readBody(lines) {
  const start = lines.findIndex((line) => line.indexOf('---') === 0);
  return start < 0 ? '' : lines.slice(start + 1).join('\n');
}

function render(data) {
  const lines = data.split('\n');
  const options = JSON5.parse(readHeader(lines));
  const tokens = marked.lexer(readBody(lines));
  let question = 0;
  let page = 0;
  const out = [{ type: 'html', raw: '', text: `<div data-page="${page++}">` }];
  for (const t of tokens) {
    if (t.type === 'hr') {
      // A rule in the survey starts a new page.
      out.push({ type: 'html', raw: '', text: `</div><div data-page="${page++}">` });
      continue;
    }
    if (t.type === 'heading' && t.depth === 3) {
      question += 1;
      if (options.NumberQuestions) {
        t.text = `${question}. ${t.text}`;
        t.tokens = marked.Lexer.lexInline(t.text);
      }
    }
    out.push(t);
  }
  out.push({ type: 'html', raw: '', text: '</div>' });
  out.links = tokens.links;
  return marked.parser(out);
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

// Every fenced block in docs/ is checked the way it can be on this machine, so a page never shows a
// config Herald refuses or code that does not parse:
//   toml          loaded by the real binary (`herald print-config --config`), which refuses unknown keys;
//   sh            `herald` lines run with their variables (`print-config` for the server, `--help` with the
//                 given flags for subcommands), blocks of HERALD_* assignments loaded together; other
//                 commands are named with where they are covered (image-test, validate-deploy) or why not;
//   js / php      parsed (`node --check`, `php -l`), fragments wrapped the way they sit in a file;
//   json, yaml    parsed;  dotenv  every line is NAME=value or a comment;
//   nginx, caddyfile, ini   run for real in docs_proxies.test.mjs and docs_supervisor.test.mjs.
// The test prints what it checked and what it left out.
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { e2e, REPO_ROOT, HERALD_BIN, LARAVEL_FALLBACKS } from '../lib/harness.mjs';

const DOCS = path.join(REPO_ROOT, 'docs');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-docs-'));

/** Every fenced block: { page, line, lang, text } (list indentation taken off). */
function blocks() {
  const out = [];
  for (const page of fs.readdirSync(DOCS).filter((f) => f.endsWith('.md')).sort()) {
    const lines = fs.readFileSync(path.join(DOCS, page), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const open = /^( *)```(\w+)\s*$/.exec(lines[i]);
      if (!open) continue;
      const [, indent, lang] = open;
      const body = [];
      let j = i + 1;
      for (; j < lines.length && lines[j] !== `${indent}\`\`\``; j++) body.push(lines[j].slice(indent.length));
      out.push({ page, line: i + 1, lang, text: body.join('\n') });
      i = j;
    }
  }
  return out;
}

/** Runs herald with only the given HERALD_* variables (and none of Laravel's), in a folder that holds the
 * laravel-echo-server.json the migration page shows, as the reader's would. */
function herald(args, env = {}) {
  const clean = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !k.startsWith('HERALD_') && !LARAVEL_FALLBACKS.includes(k)));
  return spawnSync(HERALD_BIN, args, { env: { ...clean, ...env }, encoding: 'utf8', timeout: 10000, cwd: TMP });
}

function parses(command, args, file, text) {
  fs.writeFileSync(file, text);
  const r = spawnSync(command, [...args, file], { encoding: 'utf8', timeout: 10000 });
  return r.status === 0 ? null : `${r.stdout}${r.stderr}`;
}

/** Splits a shell line into words (quotes kept together), without its trailing comment or pipe. */
function words(line) {
  const out = [];
  let word = '';
  let quote = null;
  let depth = 0; // inside $( … ), kept as one word
  for (const c of line) {
    if (depth) {
      word += c;
      if (c === '(') depth += 1;
      if (c === ')') depth -= 1;
    } else if (quote) {
      if (c === quote) quote = null; else word += c;
    } else if (c === '(' && word.endsWith('$')) {
      word += c;
      depth = 1;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && word === '') {
      break;
    } else if (c === '|') {
      break;
    } else if (/\s/.test(c)) {
      if (word) out.push(word);
      word = '';
    } else {
      word += c;
    }
  }
  if (word) out.push(word);
  return out;
}

/** Commands in docs that run elsewhere or not at all here, and why. */
const ELSEWHERE = {
  docker: 'the image and the compose stack are built and run with Podman by scripts/image-test.sh (make test)',
  helm: 'the chart is linted and rendered with every value set by scripts/validate-deploy.sh (make test)',
  php: 'artisan needs a Laravel application',
  composer: 'needs the network and a Laravel application',
  'redis-cli': 'needs the reader\'s Redis',
  curl: 'needs the reader\'s Laravel application',
  bash: 'the Forge daemon line sources a site\'s .env (the Laravel names it relies on are tested in laravel_env.test.mjs)',
};

describe('docs/: every block', () => {
  const all = blocks();
  const echoServerFile = all.find((b) => b.lang === 'json' && b.text.includes('"authHost"'));
  if (echoServerFile) fs.writeFileSync(path.join(TMP, 'laravel-echo-server.json'), echoServerFile.text);
  const checked = {};
  const leftOut = [];
  const count = (lang) => { checked[lang] = (checked[lang] ?? 0) + 1; };

  e2e('toml blocks load in the real binary', () => {
    for (const b of all.filter((x) => x.lang === 'toml')) {
      const file = path.join(TMP, `block-${b.line}.toml`);
      fs.writeFileSync(file, b.text);
      const r = herald(['print-config', '--config', file]);
      assert.equal(r.status, 0, `${b.page}:${b.line}: ${r.stderr}`);
      count('toml');
    }
  });

  e2e('sh blocks: herald lines and HERALD_* settings are accepted as written', () => {
    for (const b of all.filter((x) => x.lang === 'sh')) {
      const blockEnv = {};
      let onlyAssignments = true;
      let continued = false; // the line before ended with \: this one is part of its command
      for (const raw of b.text.split('\n')) {
        const line = raw.trim();
        const continuation = continued;
        continued = line.endsWith('\\');
        if (!line || line.startsWith('#') || continuation) continue;
        if (line.includes('…')) { leftOut.push(`${b.page}:${b.line} "${line}": a placeholder (…)`); onlyAssignments = false; continue; }
        const w = words(line.replace(/\\$/, ''));
        const env = {};
        while (w.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(w[0])) {
          const [k, ...v] = w.shift().split('=');
          env[k] = v.join('=');
        }
        Object.assign(blockEnv, env);
        if (w.length === 0) continue;
        onlyAssignments = false;
        const [command, ...args] = w;
        if (command === 'herald' && args.length === 0) {
          const r = herald(['print-config'], env);
          assert.equal(r.status, 0, `${b.page}:${b.line} ${line}: ${r.stderr}`);
        } else if (command === 'herald') {
          const r = herald([...args, '--help'], env);
          assert.equal(r.status, 0, `${b.page}:${b.line} ${line}: ${r.stderr}`);
        } else if (ELSEWHERE[command]) {
          leftOut.push(`${b.page}:${b.line} ${command}: ${ELSEWHERE[command]}`);
          continue;
        } else {
          assert.fail(`${b.page}:${b.line}: "${line}" is neither checked nor listed as covered elsewhere`);
        }
        count('sh');
      }
      const settings = Object.keys(blockEnv).filter((k) => k.startsWith('HERALD_'));
      if (onlyAssignments && settings.length) {
        const env = Object.fromEntries(settings.map((k) => [k, blockEnv[k].replace(/^\$\(.*\)$/, 'x'.repeat(48))]));
        const r = herald(['print-config'], env);
        assert.equal(r.status, 0, `${b.page}:${b.line}: these settings together: ${r.stderr}`);
        count('sh');
      }
    }
  });

  e2e('js and php blocks parse; json blocks parse; dotenv blocks are NAME=value lines', () => {
    // `…` stands for the reader's own code: an expression there.
    const jsWraps = [(t) => t, (t) => `({\n${t}\n})`, (t) => `const x = {\n${t}\n};`]
      .map((wrap) => (t) => wrap(t.replaceAll('…', 'undefined')));
    const phpWraps = [(t) => (t.startsWith('<?php') ? t : `<?php\n${t}\n`), (t) => `<?php\n$x = [\n${t}\n];\n`,
      (t) => `<?php\n$app\n${t};\n`].map((wrap) => (t) => wrap(t.replaceAll('…', 'null')));
    for (const b of all) {
      const where = `${b.page}:${b.line}`;
      if (b.lang === 'js') {
        const errors = jsWraps.map((wrap, i) => parses('node', ['--check'], path.join(TMP, `b${b.line}-${i}.mjs`), wrap(b.text)));
        assert.ok(errors.includes(null), `${where}: does not parse as JavaScript:\n${errors[0]}`);
      } else if (b.lang === 'php') {
        const errors = phpWraps.map((wrap, i) => parses('php', ['-l'], path.join(TMP, `b${b.line}-${i}.php`), wrap(b.text)));
        assert.ok(errors.includes(null), `${where}: does not parse as PHP:\n${errors[0]}`);
      } else if (b.lang === 'json') {
        assert.doesNotThrow(() => JSON.parse(b.text), where);
      } else if (b.lang === 'yaml') {
        const error = parses('python3', ['-c', 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))'],
          path.join(TMP, `b${b.line}.yaml`), b.text);
        assert.equal(error, null, `${where}: not YAML`);
      } else if (b.lang === 'dotenv') {
        for (const line of b.text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
          assert.match(line, /^[A-Z_][A-Z0-9_]*=("[^"]*"|\S*)(\s+#.*)?$/, `${where}: ${line}`);
        }
      } else {
        continue;
      }
      count(b.lang);
    }
    const ranElsewhere = all.filter((b) => ['nginx', 'caddyfile', 'ini'].includes(b.lang)).length;
    console.log(`docs blocks checked: ${JSON.stringify(checked)}; ${ranElsewhere} nginx/Caddy/Supervisor/systemd blocks run in their own tests`);
    for (const l of leftOut) console.log(`  not run here: ${l}`);
    const kinds = new Set(all.map((b) => b.lang));
    for (const kind of kinds) {
      assert.ok(['toml', 'sh', 'js', 'php', 'json', 'yaml', 'dotenv', 'nginx', 'caddyfile', 'ini'].includes(kind),
        `a ${kind} block in docs/ that no test checks`);
    }
  });
});

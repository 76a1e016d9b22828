// The shipped deployment files: every gateway configuration in deploy/ (the
// JSON files and the one inside the Kubernetes ConfigMap) passes `check`;
// compose.yaml and the Kubernetes manifests are valid YAML (python3-yaml),
// and compose runs a Redis the gateway's "shared" points at, with a port
// range that lets `--scale gateway=N` give each replica its own host port.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { needGateway, runGateway } from './harness.mjs';

const DEPLOY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy');
const hasYaml = spawnSync('python3', ['-c', 'import yaml']).status === 0;
const needYaml = hasYaml ? {} : { skip: 'python3-yaml is not installed (deploy/install-deps.sh --test)' };

/** Every YAML document of file, as JSON (python3-yaml's safe loader). */
function yamlDocs(file) {
  const out = execFileSync('python3', ['-c',
    'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', file],
  { encoding: 'utf8' });
  return JSON.parse(out);
}

async function checks(file) {
  const r = await runGateway(['check', '-c', file]);
  assert.equal(r.code, 0, `${file}: ${r.stderr}`);
  assert.match(r.stderr, /configuration OK/);
  return r;
}

test('check passes on every deploy/*.json', needGateway, async () => {
  const files = readdirSync(DEPLOY).filter((f) => f.endsWith('.json'));
  assert.ok(files.includes('gateway.container.json') && files.includes('gateway.compose.json'), files.join(' '));
  for (const f of files) await checks(path.join(DEPLOY, f));
});

test("check passes on the gateway.json inside deploy/k8s/configmap.yaml", { ...needGateway, ...needYaml }, async () => {
  const [cm] = yamlDocs(path.join(DEPLOY, 'k8s/configmap.yaml'));
  const text = cm.data['gateway.json'];
  assert.match(text, /"shared"/);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ogw-deploy-'));
  try {
    const file = path.join(dir, 'gateway.json');
    writeFileSync(file, text);
    // (where the Service name "redis" does not resolve, check says so and passes)
    await checks(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('compose.yaml: a Redis the gateway points at, a port range for replicas; every manifest parses', needYaml, () => {
  const [compose] = yamlDocs(path.join(DEPLOY, 'compose.yaml'));
  const { redis, gateway } = compose.services;
  assert.ok(redis, 'a redis service');
  assert.match(redis.image, /^(valkey\/valkey|redis):/);
  assert.equal(redis.ports, undefined, 'Redis is not published');
  assert.ok(redis.command.includes('--save') && redis.command.includes('--appendonly'), 'no persistence');
  assert.ok(gateway.depends_on.includes('redis'));
  // the configuration mounted is the compose one, and its "shared" names the service
  const mount = gateway.volumes.find((v) => v.endsWith(':/etc/ollama-gateway/gateway.json:ro'));
  const cfgFile = path.join(DEPLOY, mount.split(':')[0]);
  assert.ok(existsSync(cfgFile), cfgFile);
  assert.match(readFileSync(cfgFile, 'utf8'), /"redis":\s*"redis:\/\/redis:6379\/0"/);
  // no fixed host port: a range, one port per replica
  assert.equal(gateway.ports.length, 1);
  const m = String(gateway.ports[0]).match(/^(?:[\d.]+:)?(\d+)-(\d+):8080$/);
  assert.ok(m && Number(m[2]) > Number(m[1]), `a host port range: ${gateway.ports[0]}`);
  for (const f of readdirSync(path.join(DEPLOY, 'k8s')).filter((x) => x.endsWith('.yaml'))) {
    const docs = yamlDocs(path.join(DEPLOY, 'k8s', f));
    assert.ok(docs.length >= 1 && docs.every((d) => d === null || typeof d === 'object'), f);
  }
});

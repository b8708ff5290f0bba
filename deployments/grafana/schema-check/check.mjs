// Type-checks every dashboard in ../dashboards against @grafana/schema (the TypeScript types
// Grafana generates from its CUE schemas), the same version as the grafana/grafana image in
// deployments/docker-compose.yml: the dashboard model (panels, gridPos, templating,
// annotations, fieldConfig), and each timeseries and stat panel's options and custom field
// config against that panel plugin's schema. Object literals get TypeScript's excess-property
// check, so a misspelt or unknown key is an error, not a silently ignored setting.
//
//   cd deployments/grafana/schema-check && npm ci && node check.mjs
//
// Grafana's schemas use TypeScript enums ("background" is BigValueColorMode.Background); JSON
// holds their values, so the types are mapped to the enums' literal values first.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dir = join(here, '..', 'dashboards');
const raw = '@grafana/schema/dist/types/raw';
// Panel plugins this check knows: the schema module, and whether it has a custom FieldConfig.
const plugins = {
  timeseries: [`${raw}/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen`, true],
  stat: [`${raw}/composable/stat/panelcfg/x/StatPanelCfg_types.gen`, false],
};

let src = `import type { Dashboard } from '${raw}/dashboard/x/dashboard_types.gen';
${Object.entries(plugins)
  .map(([k, [p, field]]) => `import type { Options as ${k}Options${field ? `, FieldConfig as ${k}Field` : ''} } from '${p}';`)
  .join('\n')}
type Lit<T> = T extends string ? \`\${T}\` : T extends Array<infer E> ? Array<Lit<E>> : T extends object ? { [K in keyof T]: Lit<T[K]> } : T;
type Fresh<T> = Lit<T>;
`;
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
if (files.length === 0) throw new Error(`no dashboards in ${dir}`);
let checks = 0;
for (const [i, file] of files.entries()) {
  const text = readFileSync(join(dir, file), 'utf8');
  const dash = JSON.parse(text);
  src += `\n// ${file}\nexport const d${i}: Fresh<Dashboard> = ${text};\n`;
  checks++;
  for (const p of dash.panels ?? []) {
    if (p.type === 'row') continue;
    if (!(p.type in plugins)) throw new Error(`${file}: panel ${p.id} has type ${p.type}, which this check does not know: add its schema`);
    src += `export const d${i}_p${p.id}_options: Fresh<${p.type}Options> = ${JSON.stringify(p.options)};\n`;
    const custom = p.fieldConfig?.defaults?.custom;
    if (custom !== undefined) {
      if (!plugins[p.type][1]) throw new Error(`${file}: panel ${p.id} (${p.type}) has a custom field config, which its plugin does not define`);
      src += `export const d${i}_p${p.id}_custom: Partial<Fresh<${p.type}Field>> = ${JSON.stringify(custom)};\n`;
    }
    checks++;
  }
}
const work = mkdtempSync(join(here, '.check-'));
const file = join(work, 'dashboards.ts');
writeFileSync(file, src);
const tsc = join(here, 'node_modules', 'typescript', 'bin', 'tsc');
try {
  execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--moduleResolution', 'node', '--module', 'commonjs', '--target', 'es2020', '--baseUrl', here, file], { stdio: 'inherit', cwd: here });
} catch {
  console.error(`schema check failed: see the errors above (generated ${file})`);
  process.exit(1);
}
rmSync(work, { recursive: true });
console.log(`${files.length} dashboard(s), ${checks} objects type-checked against @grafana/schema`);

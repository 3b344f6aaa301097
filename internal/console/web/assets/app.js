// The certfleet web console: one page, hash routes, every operation through
// POST /console/api (Action, Version and the operation's parameters) with
// the session's CSRF token. No framework; text is always set as text
// (never HTML), so nothing a user stored can run as script.
import { t, setLang, lang } from './i18n.js';

const CERT = '2020-04-07', RAM = '2015-05-01';
let me = null;

// h builds an element: attributes (on* are listeners), then children.
export function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat(9)) if (k != null && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}

// fill replaces el's children, skipping null and false.
function fill(el, ...kids) {
  el.replaceChildren(...kids.flat(9).filter(k => k != null && k !== false));
}

async function post(url, params) {
  const r = await fetch(url, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': me ? me.CSRF : '', 'X-Requested-With': 'certfleet-console' },
    body: new URLSearchParams(params),
  });
  let j;
  try { j = await r.json(); } catch { j = { Code: 'InternalError', Message: r.statusText }; }
  if (!r.ok) {
    if (r.status === 401 && j.Code === 'SessionExpired') { me = null; location.hash = '#/signin'; }
    const err = new Error(j.Message || j.Code);
    err.code = j.Code; err.status = r.status;
    throw err;
  }
  return j;
}
const api = (action, params = {}, version = CERT) => {
  const p = { Action: action, Version: version };
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p[k] = v;
  return post('api', p);
};
const ram = (action, params) => api(action, params, RAM);
// can reports whether the signed-in user may perform an action: write
// controls are shown only then (the server refuses the call anyway).
const can = (action, version = CERT) => !!(me && me.Allowed && me.Allowed[(version === RAM ? 'ram:' : 'yundun-cert:') + action]);

function flash(text, kind = 'ok') {
  const f = document.getElementById('flash');
  fill(f, h('div', { class: 'msg ' + kind, role: kind === 'error' ? 'alert' : null }, text));
}
const clearFlash = () => fill(document.getElementById('flash'), );
// run calls fn, showing its error; returns its result or undefined.
async function run(fn, okText) {
  try { const v = await fn(); if (okText) flash(okText); return v; }
  catch (e) { flash(e.message, 'error'); return undefined; }
}

function fmtTime(v) {
  if (!v) return '';
  const n = typeof v === 'number' ? v : (/^\d+$/.test(v) ? Number(v) : Date.parse(v));
  if (!n) return String(v);
  return new Date(n).toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}
const days = (end) => Math.floor((Number(end) - Date.now()) / 86400000);
function expiry(end) {
  const d = days(end);
  const cls = d < 7 ? 'exp-bad' : d < 30 ? 'exp-warn' : 'exp-ok';
  return h('span', { class: cls }, d < 0 ? t('expired') : t('{n} days').replace('{n}', d));
}
const badge = (s) => h('span', { class: 'badge s-' + s }, t(s));

function table(cols, rows, empty) {
  if (!rows.length) return h('p', { class: 'help' }, empty || t('Nothing here yet.'));
  return h('div', { class: 'tablewrap' }, h('table', {},
    h('thead', {}, h('tr', {}, cols.map(c => h('th', { scope: 'col' }, t(c[0]))))),
    h('tbody', {}, rows.map(r => h('tr', {}, cols.map(c => h('td', {}, c[1](r))))))));
}

function pager(page, size, total, go) {
  const pages = Math.max(1, Math.ceil(total / size));
  return h('div', { class: 'pager' },
    h('button', { type: 'button', disabled: page <= 1, onclick: () => go(page - 1) }, t('Previous')),
    h('span', {}, t('Page {p} of {n} · {t} in all').replace('{p}', page).replace('{n}', pages).replace('{t}', total)),
    h('button', { type: 'button', disabled: page >= pages, onclick: () => go(page + 1) }, t('Next')));
}

let fieldSeq = 0;
// field is a labelled control; spec: {name, label, type, value, help, required, options:[[v,label]], rows}
function field(spec) {
  const id = 'f' + (++fieldSeq);
  let ctl;
  if (spec.options) {
    ctl = h('select', { id, name: spec.name, required: spec.required },
      spec.options.map(([v, l]) => h('option', { value: v, selected: String(spec.value ?? '') === String(v) }, l)));
  } else if (spec.type === 'textarea') {
    ctl = h('textarea', { id, name: spec.name, required: spec.required, rows: spec.rows || 6, placeholder: spec.placeholder }, spec.value || '');
  } else if (spec.type === 'checkbox') {
    ctl = h('input', { id, name: spec.name, type: 'checkbox', checked: !!spec.value });
  } else {
    ctl = h('input', { id, name: spec.name, type: spec.type || 'text', value: spec.value ?? '', required: spec.required,
      autocomplete: spec.autocomplete || (spec.type === 'password' ? 'new-password' : 'off'), placeholder: spec.placeholder, min: spec.min, max: spec.max });
  }
  if (spec.help) ctl.setAttribute('aria-describedby', id + 'h');
  return h('div', { class: 'field' }, h('label', { for: id }, t(spec.label || spec.name) + (spec.required ? ' *' : '')), ctl,
    spec.help ? h('span', { id: id + 'h', class: 'help' }, spec.help) : null);
}
const formValues = (form) => Object.fromEntries([...form.elements].filter(e => e.name).map(e => [e.name, e.type === 'checkbox' ? e.checked : e.value]));

// page starts rendering a page: a fresh container in main, which it
// returns. A page still loading when the user moves on renders into its own
// container, by then detached, so it never overwrites the newer page.
function page(title, ...kids) {
  document.getElementById('top').hidden = false;
  document.title = t(title) + ' · certfleet';
  const m = h('div');
  fill(document.getElementById('main'), m);
  fill(m, h('h1', {}, t(title)), ...kids);
  return m;
}

// ---------- sign-in ----------
function signInPage() {
  document.getElementById('top').hidden = true;
  const err = h('div', { role: 'alert' });
  const code = field({ name: 'Code', label: 'Authenticator code', autocomplete: 'one-time-code', help: t('Only if you bound an authenticator app.') });
  const form = h('form', { class: 'box signin', onsubmit: async (ev) => {
    ev.preventDefault();
    fill(err, );
    try {
      await post('signin', formValues(form));
      await loadMe();
      route(); // the page asked for (the hash), or the overview
    } catch (e) {
      fill(err, h('p', { class: 'msg error' }, e.message));
    }
  } },
  h('h1', {}, t('Sign in to certfleet')),
  field({ name: 'Name', label: 'Sign-in name', required: true, autocomplete: 'username', help: t('An account name (root) for its root user, or user@account for a RAM user.') }),
  field({ name: 'Password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' }),
  code, err, h('button', { class: 'primary', type: 'submit' }, t('Sign in')));
  document.title = t('Sign in') + ' · certfleet';
  fill(document.getElementById('main'), form);
  form.querySelector('input').focus();
}

async function loadMe() {
  const r = await fetch('whoami', { credentials: 'same-origin' });
  if (!r.ok) { me = null; return null; }
  me = await r.json();
  document.getElementById('me').textContent = me.Name;
  return me;
}

// ---------- overview ----------
async function overview() {
  const m = page('Overview', h('p', {}, t('Loading…')));
  const count = (st) => api('ListUserCertificateOrder', { Status: st, ShowSize: 1 }).then(r => r.TotalCount);
  const [expired, soon, later, status, jobs, failedN] = await Promise.all([
    count('EXPIRED'), count('WILLEXPIRED'), count('ISSUED'),
    api('DescribeCloudResourceStatus'),
    api('ListDeploymentJob', { ShowSize: 100 }),
    api('ListNotification', { Status: 'failed', ShowSize: 5 }).catch(() => null),
  ]);
  const total = expired + soon + later || 1;
  const bar = h('div', { class: 'bar', role: 'img', 'aria-label': t('Certificates by days to expiry') },
    [['bad', expired], ['warn', soon], ['ok', later]].map(([c, n]) => { const s = h('span', { class: c }); s.style.width = (100 * n / total) + '%'; return s; }));
  const weekAgo = Date.now() - 7 * 86400000;
  const recent = jobs.Data.filter(j => Number(j.GmtModified) >= weekAgo);
  const running = recent.filter(j => ['pending', 'scheduling', 'processing'].includes(j.Status));
  const failed = recent.filter(j => j.Status === 'error');
  const stale = status.Data.reduce((n, p) => n + p.StaleCount, 0);
  const card = (label, n, href) => h('a', { class: 'card', href }, h('div', { class: 'n' }, n), t(label));
  fill(m, h('h1', {}, t('Overview')),
    h('div', { class: 'grid' },
      card('Expired certificates', expired, '#/certificates?status=EXPIRED'),
      card('Expiring within 30 days', soon, '#/certificates?status=WILLEXPIRED'),
      card('Valid beyond 30 days', later, '#/certificates?status=ISSUED'),
      card('Endpoints serving a stale certificate', stale, '#/resources'),
      card('Jobs running (7 days)', running.length, '#/jobs'),
      card('Jobs failed (7 days)', failed.length, '#/jobs'),
      card('Failed notifications', failedN ? failedN.TotalCount : '—', '#/contacts')),
    h('h2', {}, t('Certificates by days to expiry')), bar,
    h('p', { class: 'help' }, `${t('expired')}: ${expired} · < 30: ${soon} · ≥ 30: ${later}`),
    h('h2', {}, t('Resources by product')),
    table([['Product', p => p.CloudName + '/' + p.CloudProduct], ['Resources', p => p.TotalCount],
      ['Stale', p => p.StaleCount ? h('span', { class: 'exp-bad' }, p.StaleCount) : 0], ['Expiring', p => p.ExpiringCount]], status.Data),
    h('h2', {}, t('Failed jobs (7 days)')),
    table([['Job', j => h('a', { href: '#/jobs/' + j.Id }, j.Name || j.Id)], ['Status', j => badge(j.Status)], ['Modified', j => fmtTime(j.GmtModified)]], failed));
}

// ---------- certificates ----------
async function certificates(q) {
  const st = { page: 1, keyword: q.get('q') || '', status: q.get('status') || '' };
  const list = h('div');
  const search = h('form', { class: 'row', role: 'search', onsubmit: (ev) => { ev.preventDefault(); st.keyword = formValues(search).Keyword; st.page = 1; load(); } },
    field({ name: 'Keyword', label: 'Search name or domain', value: st.keyword }),
    field({ name: 'Status', label: 'Expiry', value: st.status, options: [['', t('Not expired')], ['WILLEXPIRED', t('Expiring within 30 days')], ['ISSUED', t('Valid beyond 30 days')], ['EXPIRED', t('Expired')]] }),
    h('button', { type: 'submit' }, t('Search')));
  search.elements.Status.addEventListener('change', () => { st.status = search.elements.Status.value; st.page = 1; load(); });
  async function load() {
    const r = await run(() => api('ListUserCertificateOrder', { Keyword: st.keyword, Status: st.status, CurrentPage: st.page, ShowSize: 20 }));
    if (!r) return;
    fill(list, table([
      ['Name', c => h('a', { href: '#/certificates/' + c.CertificateId }, c.Name)],
      ['Domains', c => c.Sans], ['Issuer', c => c.Issuer],
      ['Expires', c => h('span', {}, c.EndDate, ' (', expiry(c.CertEndTime), ')')],
      ['Key', c => c.Algorithm]], r.CertificateOrderList, t('No certificates match.')),
    pager(st.page, 20, r.TotalCount, (p) => { st.page = p; load(); }));
  }
  page('Certificates', search, list, can('UploadUserCertificate') ? uploadForm(load) : null);
  await load();
}

function uploadForm(done) {
  const certF = field({ name: 'Cert', label: 'Certificate chain (PEM)', type: 'textarea', help: t('Paste, or drop .pem/.crt/.key files here.') });
  const keyF = field({ name: 'Key', label: 'Private key (PEM)', type: 'textarea' });
  const drop = h('div', { class: 'drop' }, certF, keyF);
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault(); drop.classList.remove('over');
    for (const f of e.dataTransfer.files) await readPEM(f);
  });
  async function readPEM(f) {
    const text = await f.text();
    const target = /PRIVATE KEY-----/.test(text) ? form.elements.Key : form.elements.Cert;
    target.value = (target.value ? target.value.trimEnd() + '\n' : '') + text;
  }
  const files = h('input', { type: 'file', id: 'pemfiles', multiple: true, accept: '.pem,.crt,.cer,.key' });
  files.addEventListener('change', async () => { for (const f of files.files) await readPEM(f); });
  const form = h('form', { class: 'box', onsubmit: async (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    const r = await run(() => api('UploadUserCertificate', { Name: v.Name, Cert: v.Cert, Key: v.Key }), t('Certificate uploaded.'));
    if (r) { form.reset(); done(); }
  } }, h('h2', {}, t('Upload a certificate (PEM)')),
  field({ name: 'Name', label: 'Name', required: true }),
  h('div', { class: 'field' }, h('label', { for: 'pemfiles' }, t('PEM files')), files), drop,
  h('button', { class: 'primary', type: 'submit' }, t('Upload')));
  const pfxFile = h('input', { type: 'file', id: 'pfxfile', accept: '.pfx,.p12', required: true });
  const pfx = h('form', { class: 'box', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = pfxFile.files[0];
    if (!f) return;
    const b64 = btoa(String.fromCharCode(...new Uint8Array(await f.arrayBuffer())));
    const v = formValues(pfx);
    const r = await run(() => post('pfx', { Name: v.Name, Pfx: b64, PfxPassword: v.PfxPassword }), t('Certificate uploaded.'));
    if (r) { pfx.reset(); done(); }
  } }, h('h2', {}, t('Upload a PFX / PKCS#12 file')),
  field({ name: 'Name', label: 'Name', required: true }),
  h('div', { class: 'field' }, h('label', { for: 'pfxfile' }, t('PFX file')), pfxFile),
  field({ name: 'PfxPassword', label: 'PFX password', type: 'password', autocomplete: 'off' }),
  h('button', { class: 'primary', type: 'submit' }, t('Upload')));
  return h('div', {}, form, pfx);
}

async function certificate(id) {
  const c = await run(() => api('GetUserCertificateDetail', { CertId: id, CertFilter: 'true' }));
  if (!c) return;
  const deployed = await run(() => api('ListCloudResources', { CertIds: id, ShowSize: 50 }));
  const kv = (pairs) => h('dl', { class: 'kv' }, pairs.map(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, v)]));
  page(c.Name,
    kv([['Common name', c.Common], ['Domains (SANs)', c.Sans], ['Issuer', c.Issuer], ['Key type', c.Algorithm],
      ['Valid from', c.StartDate], ['Valid until', h('span', {}, c.EndDate, ' ', c.Expired ? h('span', { class: 'exp-bad' }, t('expired')) : '')],
      ['Serial number', h('span', { class: 'mono' }, c.SerialNo)], ['SHA-1 fingerprint', h('span', { class: 'mono' }, c.Fingerprint)],
      ['SHA-256 fingerprint', h('span', { class: 'mono' }, c.Sha2)], ['Organization', c.OrgName]]),
    h('h2', {}, t('Deployed to')),
    deployed ? table([['Resource', r => r.Name || r.Id], ['Product', r => r.CloudName + '/' + r.CloudProduct], ['Domain', r => r.Domain]], deployed.Data, t('Not deployed anywhere.')) : null,
    can('DeleteUserCertificate') ? h('p', {}, h('button', { class: 'danger', type: 'button', onclick: async () => {
      if (!confirm(t('Delete this certificate?'))) return;
      if (await run(() => api('DeleteUserCertificate', { CertId: id }), t('Deleted.'))) location.hash = '#/certificates';
    } }, t('Delete'))) : null);
}

// ---------- resources: forms from ListCloudProducts ----------
let productsCache = null;
const products = async () => productsCache || (productsCache = await api('ListCloudProducts'));

// configFields renders a product's Config keys (and the common ones) as
// labelled controls, from the descriptions alone.
function configFields(fields, current) {
  return fields.map(f => {
    const name = 'cfg.' + f.Name;
    const cur = current[f.Name];
    const help = [f.Help, f.Default ? t('Default: ') + f.Default : ''].filter(Boolean).join(' ');
    if (f.Type === 'boolean') return field({ name, label: f.Name, type: 'checkbox', value: cur === true || (cur === undefined && f.Default === 'true'), help });
    if (f.Allowed && f.Allowed.length) return field({ name, label: f.Name, value: cur ?? '', required: f.Required, help, options: [['', '—'], ...f.Allowed.map(a => [a, a])] });
    if (f.Type === 'object') return field({ name, label: f.Name, type: 'textarea', rows: 3, value: cur ? JSON.stringify(cur) : '', required: f.Required, help });
    if (f.Type === 'string-list') return field({ name, label: f.Name, value: Array.isArray(cur) ? cur.join(', ') : (cur ?? ''), required: f.Required, help: help + ' ' + t('(comma separated)') });
    return field({ name, label: f.Name, type: f.Secret ? 'password' : f.Type === 'integer' ? 'number' : 'text', value: cur ?? '', required: f.Required, help, min: f.Min || null, max: f.Max || null });
  });
}
function readConfig(form, fields) {
  const cfg = {};
  for (const f of fields) {
    const el = form.elements['cfg.' + f.Name];
    if (!el) continue;
    if (f.Type === 'boolean') { if (el.checked || f.Default === 'true') cfg[f.Name] = el.checked; continue; }
    const v = el.value.trim();
    if (v === '') continue;
    if (f.Type === 'integer') cfg[f.Name] = Number(v);
    else if (f.Type === 'string-list') cfg[f.Name] = v.split(',').map(s => s.trim()).filter(Boolean);
    else if (f.Type === 'object') cfg[f.Name] = JSON.parse(v);
    else cfg[f.Name] = v;
  }
  return cfg;
}

async function resourceForm(existing, done) {
  const pr = await products();
  const box = h('div');
  const sel = field({ name: 'Product', label: 'Product', required: true, value: existing ? existing.CloudName + '/' + existing.CloudProduct : '',
    options: [['', t('Choose a product')], ...pr.Products.map(d => [d.CloudName + '/' + d.CloudProduct, d.CloudName + '/' + d.CloudProduct + ' — ' + d.Summary])] });
  const form = h('form', { class: 'box', 'aria-label': t(existing ? 'Edit resource' : 'Add a resource') }, h('h2', {}, t(existing ? 'Edit resource' : 'Add a resource')), sel, box);
  const selEl = sel.querySelector('select');
  if (existing) selEl.disabled = true;
  async function render() {
    const d = pr.Products.find(p => p.CloudName + '/' + p.CloudProduct === selEl.value);
    if (!d) { fill(box, ); return; }
    let current = {};
    try { current = existing && existing.Config ? JSON.parse(existing.Config) : {}; } catch { current = {}; }
    const fields = [...d.Config, ...pr.CommonConfig];
    let access = null;
    if (d.Access && d.Access.Need && d.Access.Need !== 'none') {
      const acl = d.Access.CloudName || d.CloudName;
      const list = await api('ListCloudAccess', { ShowSize: 100 }).catch(() => ({ CloudAccessList: [] }));
      access = field({ name: 'CloudAccessId', label: 'Credential', required: d.Access.Need === 'required', value: existing ? existing.CloudAccessId : '',
        help: t('A credential of cloud ') + acl + (d.Access.SecretId ? ': ' + d.Access.SecretId : ''),
        options: [['', '—'], ...list.CloudAccessList.filter(a => a.CloudName === acl).map(a => [a.AccessId, a.Name + ' (' + a.SecretId + ')'])] });
    }
    fill(box, h('p', { class: 'help' }, d.Summary),
      field({ name: 'Name', label: 'Name', value: existing ? existing.Name : '' }),
      field({ name: 'Domain', label: 'Domain', value: existing ? existing.Domain : '', help: t('The host name the certificate must cover.') }),
      access, ...configFields(fields, current),
      h('button', { class: 'primary', type: 'submit' }, t(existing ? 'Save' : 'Create')));
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      let cfg;
      try { cfg = readConfig(form, fields); } catch (e) { flash(t('A JSON field is malformed: ') + e.message, 'error'); return; }
      const v = formValues(form);
      const p = { Name: v.Name, Domain: v.Domain, Config: JSON.stringify(cfg), CloudAccessId: v.CloudAccessId };
      const r = existing
        ? await run(() => api('UpdateCloudResource', { Id: existing.Id, ...p }), t('Saved.'))
        : await run(() => api('CreateCloudResource', { CloudName: d.CloudName, CloudProduct: d.CloudProduct, ...p }), t('Resource created.'));
      if (r) done(r);
    };
  }
  selEl.addEventListener('change', render);
  await render();
  return form;
}

async function resources() {
  const st = { page: 1, keyword: '' };
  const list = h('div');
  const formSlot = h('div');
  const search = h('form', { class: 'row', role: 'search', onsubmit: (ev) => { ev.preventDefault(); st.keyword = formValues(search).Keyword; st.page = 1; load(); } },
    field({ name: 'Keyword', label: 'Search name or domain' }), h('button', { type: 'submit' }, t('Search')));
  async function load() {
    const r = await run(() => api('ListCloudResources', { Keyword: st.keyword, CurrentPage: st.page, ShowSize: 20 }));
    if (!r) return;
    fill(list, table([
      ['ID', x => x.Id], ['Name', x => x.Name], ['Product', x => x.CloudName + '/' + x.CloudProduct], ['Domain', x => x.Domain],
      ['Certificate', x => x.CertId ? h('a', { href: '#/certificates/' + x.CertId }, x.CertName) : '—'],
      ['Observed', x => x.ObservedError ? h('span', { class: 'exp-bad' }, x.ObservedError) : (x.ObservedSubject || '—')],
      ['Stale', x => x.Stale ? h('span', { class: 'exp-bad' }, t('stale')) : ''],
      ['Status', x => x.Status === 'gone' ? h('span', { class: 'exp-bad', title: t('No longer found by discovery') }, t('gone')) : t(x.Status || 'online')],
      ['Actions', x => h('span', { class: 'row' },
        can('CheckCloudResource') ? h('button', { type: 'button', onclick: () => run(async () => {
          const c = await api('CheckCloudResource', { Id: x.Id });
          flash((c.Data.ObservedError || c.Data.ObservedSubject || t('checked')) + (c.Data.Stale ? ' — ' + t('stale') : ''));
          load();
        }) }, t('Check now')) : null,
        can('UpdateCloudResource') ? h('button', { type: 'button', onclick: async () => {
          fill(formSlot, await resourceForm(x, () => { fill(formSlot, ); load(); }));
          formSlot.querySelector('input, select').focus();
        } }, t('Edit')) : null,
        can('DeleteCloudResource') ? h('button', { class: 'danger', type: 'button', onclick: async () => {
          if (confirm(t('Delete this resource?')) && await run(() => api('DeleteCloudResource', { Id: x.Id }), t('Deleted.'))) load();
        } }, t('Delete')) : null)]], r.Data, t('No resources yet.')),
    pager(st.page, 20, r.Total, (p) => { st.page = p; load(); }));
  }
  page('Resources', search, list, formSlot);
  if (can('CreateCloudResource')) fill(formSlot, await resourceForm(null, () => { load(); }));
  await load();
}

// ---------- jobs ----------
async function jobs() {
  const st = { page: 1 };
  const list = h('div');
  async function load() {
    const r = await run(() => api('ListDeploymentJob', { CurrentPage: st.page, ShowSize: 20 }));
    if (!r) return;
    fill(list, table([['ID', j => j.Id], ['Name', j => h('a', { href: '#/jobs/' + j.Id }, j.Name || ('#' + j.Id))], ['Status', j => badge(j.Status)],
      ['Products', j => j.ProductName], ['Domains', j => j.CertDomain], ['Modified', j => fmtTime(j.GmtModified)]], r.Data, t('No jobs yet.')),
    pager(st.page, 20, r.Total, (p) => { st.page = p; load(); }));
  }
  page('Jobs', can('CreateDeploymentJob') ? h('p', {}, h('a', { class: 'button primary', href: '#/jobs/new' }, t('New deployment job'))) : null, list);
  await load();
}

async function jobWizard() {
  const sel = { certs: new Set(), resources: new Set(), contacts: new Set() };
  const steps = h('div');
  const checks = (items, set, label, id) => h('fieldset', {}, h('legend', {}, t(label)),
    items.length ? items.map(it => {
      const cid = 'w' + (++fieldSeq);
      const cb = h('input', { type: 'checkbox', id: cid, checked: set.has(id(it)) });
      cb.addEventListener('change', () => cb.checked ? set.add(id(it)) : set.delete(id(it)));
      return h('div', {}, cb, ' ', h('label', { for: cid }, it.label));
    }) : h('p', { class: 'help' }, t('Nothing here yet.')));
  page('New deployment job', steps);
  // 1: certificates
  const certs = await api('ListUserCertificateOrder', { ShowSize: 100 });
  const f1 = h('form', { class: 'box', onsubmit: async (ev) => {
    ev.preventDefault();
    if (!sel.certs.size) { flash(t('Pick at least one certificate.'), 'error'); return; }
    clearFlash(); await step2();
  } }, h('h2', {}, '1. ' + t('Certificates')),
  checks(certs.CertificateOrderList.map(c => ({ id: c.CertificateId, label: `${c.Name} — ${c.Sans} (${c.EndDate})` })), sel.certs, 'Certificates to deploy', x => x.id),
  h('button', { class: 'primary', type: 'submit' }, t('Next')));
  fill(steps, f1);
  async function step2() {
    const chosen = certs.CertificateOrderList.filter(c => sel.certs.has(c.CertificateId));
    const names = chosen.flatMap(c => c.Sans.split(','));
    const covers = (d) => names.some(n => n === d || (n.startsWith('*.') && d.endsWith(n.slice(1)) && d.split('.').length === n.split('.').length));
    // Matching resources, searched on the server by each name (a wildcard by its parent domain).
    const found = new Map();
    for (const n of [...new Set(names)].slice(0, 20)) {
      const res = await api('ListCloudResources', { Keyword: n.replace(/^\*\./, ''), ShowSize: 100 });
      for (const r of res.Data) found.set(r.Id, r);
    }
    const matching = [...found.values()].filter(r => r.Domain && covers(r.Domain));
    matching.forEach(r => sel.resources.add(r.Id));
    const f2 = h('form', { class: 'box', onsubmit: async (ev) => { ev.preventDefault(); if (!sel.resources.size) { flash(t('Pick at least one resource.'), 'error'); return; } clearFlash(); await step3(); } },
      h('h2', {}, '2. ' + t('Resources the certificates cover')),
      checks(matching.map(r => ({ id: r.Id, label: `${r.Name || r.Id} — ${r.CloudName}/${r.CloudProduct} ${r.Domain}` })), sel.resources, 'Resources', x => x.id),
      h('button', { class: 'primary', type: 'submit' }, t('Next')));
    steps.append(f2);
    f2.querySelector('input, button').focus();
  }
  async function step3() {
    const cs = await api('ListContact', { ShowSize: 100 });
    const f3 = h('form', { class: 'box', onsubmit: async (ev) => { ev.preventDefault(); if (!sel.contacts.size) { flash(t('Pick at least one contact.'), 'error'); return; } clearFlash(); step4(); } },
      h('h2', {}, '3. ' + t('Contacts told of the outcome')),
      checks(cs.ContactList.map(c => ({ id: c.ContactId, label: `${c.Name} ${c.Email || ''}` })), sel.contacts, 'Contacts', x => x.id),
      h('p', {}, h('a', { href: '#/contacts' }, t('Add a contact'))),
      h('button', { class: 'primary', type: 'submit' }, t('Next')));
    steps.append(f3);
    f3.querySelector('input, button').focus();
  }
  function step4() {
    const f4 = h('form', { class: 'box', onsubmit: async (ev) => {
      ev.preventDefault();
      const v = formValues(f4);
      const p = { Name: v.Name, JobType: 'user', CertIds: [...sel.certs].join(','), ResourceIds: [...sel.resources].join(','), ContactIds: [...sel.contacts].join(',') };
      if (v.When === 'later' && v.At) p.ScheduleTime = String(new Date(v.At).getTime());
      if (v.Strategy.trim()) p.Strategy = v.Strategy.trim();
      const r = await run(() => api('CreateDeploymentJob', p));
      if (!r) return;
      f4.querySelector('button[type=submit]').disabled = true;
      await step5(r.JobId, v.When);
    } }, h('h2', {}, '4. ' + t('Schedule')),
    field({ name: 'Name', label: 'Job name', required: true, value: 'deploy ' + new Date().toISOString().slice(0, 10) }),
    field({ name: 'When', label: 'When', value: 'now', options: [['now', t('Start now')], ['later', t('At the time below')], ['draft', t('Keep as a draft')]] }),
    field({ name: 'At', label: 'Start at', type: 'datetime-local' }),
    field({ name: 'Strategy', label: 'Waves (Strategy JSON, optional)', type: 'textarea', rows: 3, placeholder: '{"Waves":[5,"50%","100%"],"BakeSeconds":60}' }),
    h('button', { class: 'primary', type: 'submit' }, t('Create job')));
    steps.append(f4);
    f4.querySelector('input').focus();
  }
  // 5: what would change (PreviewDeploymentJob, no target touched), then start.
  async function step5(jobId, when) {
    const preview = await run(() => api('PreviewDeploymentJob', { JobId: jobId }));
    const items = preview ? preview.Data : [];
    const changes = items.filter(x => x.WouldChange).length;
    const start = async () => {
      if (await run(() => api('UpdateDeploymentJobStatus', { JobId: jobId, Status: when === 'now' ? 'pending' : 'scheduling' }), t('Job started.'))) location.hash = '#/jobs/' + jobId;
    };
    const box = h('section', { class: 'box', 'aria-label': t('Preview') }, h('h2', {}, '5. ' + t('Preview')),
      h('p', { id: 'preview' }, `${t('Job created')} #${jobId}: ${changes} / ${items.length} ` + t('resource(s) will change.')),
      table([['Resource', x => x.Domain || x.ResourceId], ['Would change', x => x.WouldChange ? t('yes') : t('no (already serving it)')],
        ['Known from', x => t(x.Source)], ['Error', x => x.ObservedError]], items),
      h('div', { class: 'row' },
        when !== 'draft' ? h('button', { type: 'button', class: 'primary', onclick: start }, t(when === 'now' ? 'Start now' : 'Schedule')) : null,
        h('a', { class: 'button', href: '#/jobs/' + jobId }, t(when === 'draft' ? 'Open the job' : 'Keep as a draft'))));
    steps.append(box);
    box.querySelector('button, a').focus();
  }
}

let pollTimer = null;
async function job(id) {
  const head = h('div'), workersBox = h('div');
  const st = { page: 1, status: '', prev: null };
  const root = page('Job', head, h('h2', {}, t('Workers')), h('div', { class: 'row' },
    field({ name: 'WorkerStatus', label: 'Show workers', options: [['', t('all')], ['error', t('error')], ['success', t('success')], ['processing', t('processing')], ['rollback', t('rollback')]] })), workersBox);
  root.querySelector('[name=WorkerStatus]').addEventListener('change', (e) => { st.status = e.target.value; st.page = 1; refresh(); });
  async function refresh() {
    let j, s, w;
    try {
      [j, s, w] = await Promise.all([api('DescribeDeploymentJob', { JobId: id }), api('DescribeDeploymentJobStatus', { JobId: id }),
        api('ListWorkerResource', { JobId: id, Status: st.status, CurrentPage: st.page, ShowSize: 20 })]);
    } catch (e) { flash(e.message, 'error'); return; }
    if (!root.isConnected) return; // the user moved on
    document.title = (j.Name || '#' + id) + ' · certfleet';
    root.querySelector('h1').textContent = t('Job') + ' #' + id + ' ' + (j.Name || '');
    const done = s.SuccessCount + s.FailedCount, total = s.WorkerCount || 1;
    const now = Date.now();
    let rate = '', eta = '';
    if (st.prev && done > st.prev.done) {
      const r = (done - st.prev.done) / ((now - st.prev.at) / 1000);
      rate = r.toFixed(1) + ' /s';
      eta = Math.ceil((s.WorkerCount - done) / r) + ' s';
    }
    if (!st.prev || done !== st.prev.done) st.prev = { done, at: now };
    const bar = h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': s.WorkerCount, 'aria-valuenow': done, 'aria-label': t('Progress') },
      [['ok', s.SuccessCount], ['bad', s.FailedCount]].map(([c, n]) => { const e = h('span', { class: c }); e.style.width = (100 * n / total) + '%'; return e; }));
    const active = ['pending', 'scheduling', 'processing'].includes(j.Status);
    const btn = (label, action, params, confirmText, cls) => can(action) ? h('button', { type: 'button', class: cls, onclick: async () => {
      if (confirmText && !confirm(t(confirmText))) return;
      if (await run(() => api(action, { JobId: id, ...params }), t('Done.'))) refresh();
    } }, t(label)) : null;
    fill(head, 
      h('p', {}, t('Status'), ': ', h('span', { id: 'jobstatus' }, badge(j.Status)), j.Cancelled ? ' (' + t('cancelled') + ')' : '', ' · ', t('Domains'), ': ', j.CertDomain),
      bar,
      h('p', { id: 'jobcounts' }, `${t('success')}: ${s.SuccessCount} · ${t('failed')}: ${s.FailedCount} · ${t('workers')}: ${s.WorkerCount}`,
        s.RollbackCount ? ` · ${t('rollback')}: ${s.RollbackSuccessCount}/${s.RollbackCount}` : '', rate ? ` · ${rate} · ETA ${eta}` : ''),
      table([['Product', p => p.ProductName], ['Workers', p => p.Count]], s.ProductWorkerCount),
      h('div', { class: 'row' },
        j.Status === 'editing' ? btn('Start now', 'UpdateDeploymentJobStatus', { Status: 'pending' }) : null,
        active ? btn('Cancel job', 'CancelDeploymentJob', {}, 'Cancel this job?', 'danger') : null,
        s.FailedCount ? btn('Retry failed workers', 'RetryDeploymentJob', {}) : null,
        s.SuccessCount ? btn('Roll back the whole job', 'RollbackDeploymentJob', {}, 'Roll back every resource of this job?', 'danger') : null));
    fill(workersBox, table([['ID', x => x.Id], ['Resource', x => x.ResourceDomain || x.ResourceId], ['Product', x => x.CloudProduct],
      ['Status', x => h('span', { class: 'wstatus' }, badge(x.Status))], ['Attempts', x => x.Attempts],
      ['Error', x => x.ErrorMessage ? h('span', { class: 'exp-bad' }, x.ErrorMessage) : ''],
      ['Actions', x => x.Status === 'success' && can('RollbackDeploymentJob') ? h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (confirm(t('Roll back this worker?')) && await run(() => api('RollbackDeploymentJob', { JobId: id, WorkerIds: String(x.Id) }), t('Rollback started.'))) refresh();
      } }, t('Roll back')) : '']], w.Data, t('No workers.')),
    pager(st.page, 20, w.Total, (p) => { st.page = p; refresh(); }));
    clearTimeout(pollTimer);
    if (active || s.RollbackCount > s.RollbackSuccessCount + s.RollbackFailedCount || w.Data.some(x => x.Status === 'rollback' || x.Status === 'processing')) {
      pollTimer = setTimeout(() => { if (location.hash === '#/jobs/' + id) refresh(); }, 1500);
    }
  }
  await refresh();
}

// ---------- contacts and notifications ----------
async function contacts() {
  const list = h('div'), log = h('div');
  const st = { page: 1 };
  async function load() {
    const r = await run(() => api('ListContact', { ShowSize: 100 }));
    if (r) fill(list, table([['ID', c => c.ContactId], ['Name', c => c.Name], ['Email', c => c.Email], ['Webhooks', c => JSON.parse(c.Webhooks || '[]').join(' ')],
      ['Actions', c => can('DeleteContact') ? h('button', { type: 'button', class: 'danger', onclick: async () => { if (await run(() => api('DeleteContact', { ContactId: c.ContactId }), t('Deleted.'))) load(); } }, t('Delete')) : '']], r.ContactList));
    const n = await run(() => api('ListNotification', { CurrentPage: st.page, ShowSize: 20 }));
    if (n) fill(log, table([['Time', x => fmtTime(x.GmtCreate)], ['Event', x => x.Event], ['Channel', x => x.Channel], ['Target', x => x.Target],
      ['Status', x => badge(x.Status)], ['Error', x => x.LastError]], n.NotificationList, t('No notifications yet.')),
    pager(st.page, 20, n.TotalCount, (p) => { st.page = p; load(); }));
  }
  const form = can('CreateContact') ? h('form', { class: 'box', onsubmit: async (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    const hooks = v.Webhooks.split(/[\s,]+/).filter(Boolean);
    if (await run(() => api('CreateContact', { Name: v.Name, Email: v.Email, Mobile: v.Mobile, Webhooks: hooks.length ? JSON.stringify(hooks) : '' }), t('Contact created.'))) { form.reset(); load(); }
  } }, h('h2', {}, t('Add a contact')), field({ name: 'Name', label: 'Name', required: true }), field({ name: 'Email', label: 'Email', type: 'email' }),
  field({ name: 'Mobile', label: 'Mobile' }), field({ name: 'Webhooks', label: 'Webhooks', help: t('URLs, separated by spaces') }),
  h('button', { class: 'primary', type: 'submit' }, t('Create'))) : null;
  page('Contacts and notifications', list, form, h('h2', {}, t('Delivery log')), log);
  await load();
}

// ---------- credentials ----------
async function credentials() {
  const list = h('div');
  const pr = await products();
  const clouds = [...new Set(pr.Products.filter(d => d.Access && d.Access.Need !== 'none').map(d => d.Access.CloudName || d.CloudName))];
  async function load() {
    const r = await run(() => api('ListCloudAccess', { ShowSize: 100 }));
    if (r) fill(list, table([['ID', a => a.AccessId], ['Name', a => a.Name], ['Cloud', a => a.CloudName], ['SecretId', a => a.SecretId], ['Created', a => fmtTime(a.GmtCreate)],
      ['Actions', a => h('span', { class: 'row' }, can('SyncCloudResources') ? h('button', { type: 'button', onclick: () => run(async () => {
        const r = await api('SyncCloudResources', { AccessId: a.AccessId });
        const errs = (r.Products || []).filter(p => p.Error).map(p => p.CloudProduct + ': ' + p.Error);
        flash(`${t('Discovered')}: ${r.Found} · ${t('created')}: ${r.Created} · ${t('updated')}: ${r.Updated} · ${t('gone')}: ${r.Gone}` + (errs.length ? ' — ' + errs.join('; ') : ''), errs.length ? 'error' : 'ok');
      }) }, t('Discover resources')) : null,
      can('DeleteCloudAccess') ? h('button', { type: 'button', class: 'danger', onclick: async () => { if (confirm(t('Delete this credential?')) && await run(() => api('DeleteCloudAccess', { AccessId: a.AccessId }), t('Deleted.'))) load(); } }, t('Delete')) : null)]],
    r.CloudAccessList, t('No credentials yet.')));
  }
  const form = can('CreateCloudAccess') ? h('form', { class: 'box', onsubmit: async (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    if (await run(() => api('CreateCloudAccess', { CloudName: v.CloudName, Name: v.Name, SecretId: v.SecretId, SecretKey: v.SecretKey, Config: v.Config }), t('Credential saved; its secret is not shown again.'))) { form.reset(); load(); }
  } }, h('h2', {}, t('Add a credential')),
  field({ name: 'CloudName', label: 'Cloud', required: true, options: clouds.map(c => [c, c]) }),
  field({ name: 'Name', label: 'Name' }), field({ name: 'SecretId', label: 'SecretId', required: true }),
  field({ name: 'SecretKey', label: 'SecretKey', type: 'password', help: t('Write-only: stored sealed, never shown back.') }),
  field({ name: 'Config', label: 'Config (JSON, optional)', type: 'textarea', rows: 2 }),
  h('button', { class: 'primary', type: 'submit' }, t('Save'))) : null;
  page('Credentials', list, form);
  await load();
}

// ---------- users, keys, policies ----------
async function users() {
  const list = h('div'), detail = h('div'), pols = h('div');
  async function load() {
    const r = await run(() => ram('ListUsers', { MaxItems: 100 }));
    if (r) fill(list, table([['Name', u => h('button', { type: 'button', onclick: () => showUser(u.UserName) }, u.UserName)], ['Display name', u => u.DisplayName], ['Created', u => fmtTime(u.CreateDate)]], r.Users.User, t('No users yet.')));
    const p = await run(() => ram('ListPolicies', { MaxItems: 100 }));
    if (p) fill(pols, table([['Policy', x => x.PolicyName], ['Type', x => x.PolicyType], ['Description', x => x.Description]], p.Policies.Policy));
  }
  async function showUser(name) {
    const [keys, ps, prof] = await Promise.all([ram('ListAccessKeys', { UserName: name }).catch(() => null), ram('ListPoliciesForUser', { UserName: name }).catch(() => null),
      ram('GetLoginProfile', { UserName: name }).catch(() => null)]);
    const all = await ram('ListPolicies', { MaxItems: 100 }).catch(() => ({ Policies: { Policy: [] } }));
    const attach = can('AttachPolicyToUser', RAM) ? h('form', { class: 'row', onsubmit: async (ev) => {
      ev.preventDefault();
      const [type, pname] = formValues(attach).Policy.split(':');
      if (await run(() => ram('AttachPolicyToUser', { UserName: name, PolicyType: type, PolicyName: pname }), t('Policy attached.'))) showUser(name);
    } }, field({ name: 'Policy', label: 'Attach a policy', options: all.Policies.Policy.map(p => [p.PolicyType + ':' + p.PolicyName, p.PolicyName + ' (' + p.PolicyType + ')']) }),
    h('button', { type: 'submit' }, t('Attach'))) : null;
    const pw = (can(prof ? 'UpdateLoginProfile' : 'CreateLoginProfile', RAM)) ? h('form', { class: 'row', onsubmit: async (ev) => {
      ev.preventDefault();
      if (await run(() => ram(prof ? 'UpdateLoginProfile' : 'CreateLoginProfile', { UserName: name, Password: formValues(pw).Password }), t('Console password set.'))) showUser(name);
    } }, field({ name: 'Password', label: prof ? 'New console password' : 'Console password', type: 'password', required: true, help: t('8–128 characters, letters with digits or symbols.') }),
    h('button', { type: 'submit' }, t('Set password'))) : null;
    const secretBox = h('div');
    fill(detail, h('section', { class: 'box', 'aria-label': name }, h('h2', {}, t('User') + ' ' + name),
      h('p', {}, t('Console sign-in'), ': ', prof ? name + '@' + me.Account : t('none')), pw,
      h('h3', {}, t('Policies')), ps ? table([['Policy', x => x.PolicyName], ['Type', x => x.PolicyType],
        ['Actions', x => can('DetachPolicyFromUser', RAM) ? h('button', { type: 'button', onclick: async () => { if (await run(() => ram('DetachPolicyFromUser', { UserName: name, PolicyType: x.PolicyType, PolicyName: x.PolicyName }))) showUser(name); } }, t('Detach')) : '']], ps.Policies.Policy) : null,
      attach,
      h('h3', {}, t('Access keys')), keys ? table([['AccessKeyId', k => h('span', { class: 'mono' }, k.AccessKeyId)], ['Status', k => k.Status], ['Created', k => fmtTime(k.CreateDate)],
        ['Actions', k => h('span', { class: 'row' },
          can('UpdateAccessKey', RAM) ? h('button', { type: 'button', onclick: async () => { if (await run(() => ram('UpdateAccessKey', { UserName: name, UserAccessKeyId: k.AccessKeyId, Status: k.Status === 'Active' ? 'Inactive' : 'Active' }))) showUser(name); } }, t(k.Status === 'Active' ? 'Disable' : 'Enable')) : null,
          can('DeleteAccessKey', RAM) ? h('button', { type: 'button', class: 'danger', onclick: async () => { if (confirm(t('Delete this key?')) && await run(() => ram('DeleteAccessKey', { UserName: name, UserAccessKeyId: k.AccessKeyId }))) showUser(name); } }, t('Delete')) : null)]], keys.AccessKeys.AccessKey) : null,
      can('CreateAccessKey', RAM) ? h('button', { type: 'button', onclick: async () => {
        const k = await run(() => ram('CreateAccessKey', { UserName: name }));
        if (!k) return;
        await showUser(name);
        fill(detail.querySelector('.secret'), h('div', { class: 'msg ok', role: 'status' }, t('Copy the secret now; it is not shown again.'), ' ',
          h('span', { class: 'mono' }, k.AccessKey.AccessKeyId), ' / ', h('span', { class: 'mono', id: 'newsecret' }, k.AccessKey.AccessKeySecret)));
      } }, t('Create access key')) : null, h('div', { class: 'secret' }, secretBox)));
    detail.querySelector('h2').scrollIntoView();
  }
  const create = can('CreateUser', RAM) ? h('form', { class: 'box', onsubmit: async (ev) => {
    ev.preventDefault();
    const v = formValues(create);
    if (await run(() => ram('CreateUser', { UserName: v.UserName, DisplayName: v.DisplayName }), t('User created.'))) { create.reset(); load(); showUser(v.UserName); }
  } }, h('h2', {}, t('Create a user')), field({ name: 'UserName', label: 'User name', required: true }), field({ name: 'DisplayName', label: 'Display name' }),
  h('button', { class: 'primary', type: 'submit' }, t('Create'))) : null;
  const policy = can('CreatePolicy', RAM) ? h('form', { class: 'box', onsubmit: async (ev) => {
    ev.preventDefault();
    const v = formValues(policy);
    if (await run(() => ram('CreatePolicy', { PolicyName: v.PolicyName, PolicyDocument: v.PolicyDocument, Description: v.Description }), t('Policy created.'))) { policy.reset(); load(); }
  } }, h('h2', {}, t('Create a custom policy')), field({ name: 'PolicyName', label: 'Policy name', required: true }), field({ name: 'Description', label: 'Description' }),
  field({ name: 'PolicyDocument', label: 'Policy document (JSON)', type: 'textarea', required: true, value: '{"Version":"1","Statement":[{"Effect":"Allow","Action":["yundun-cert:List*","yundun-cert:Describe*"],"Resource":"*"}]}' }),
  h('button', { class: 'primary', type: 'submit' }, t('Create'))) : null;
  page('Users, keys and policies', list, detail, create, h('h2', {}, t('Policies')), pols, policy);
  await load();
}

// ---------- audit ----------
async function audit() {
  const list = h('div'), chain = h('p', { id: 'chain' }, t('Verifying the chain…'));
  const st = { page: 1 };
  async function load() {
    const r = await run(() => api('LookupAuditEvents', { CurrentPage: st.page, ShowSize: 20 }));
    if (r) fill(list, table([['Time', e => fmtTime(e.EventTime)], ['Principal', e => e.Principal], ['Via', e => e.AccessKeyId.startsWith('console/') ? t('console') : e.AccessKeyId],
      ['Action', e => e.Action], ['Result', e => e.ResultCode], ['Source', e => e.SourceIp], ['Parameters', e => h('span', { class: 'mono' }, e.Parameters)]], r.Events),
    pager(st.page, 20, r.TotalCount, (p) => { st.page = p; load(); }));
  }
  page('Audit log', chain, list);
  load();
  const r = await fetch('auditchain', { credentials: 'same-origin' });
  const j = await r.json().catch(() => ({}));
  fill(chain, r.ok ? h('span', { class: j.Intact ? 'exp-ok' : 'exp-bad' }, j.Intact ? t('Chain intact') + ` (${j.Events} ${t('events checked')})` : t('Chain broken') + ': ' + j.Error)
    : h('span', { class: 'help' }, j.Message || t('Chain not verified.')));
}

// ---------- my account ----------
async function account() {
  const box = h('div');
  const pw = h('form', { class: 'box', onsubmit: async (ev) => {
    ev.preventDefault();
    const v = formValues(pw);
    if (v.New !== v.Again) { flash(t('The two new passwords differ.'), 'error'); return; }
    if (await run(() => post('password', { Current: v.Current, New: v.New }), t('Password changed; other browsers are signed out.'))) { await loadMe(); account(); }
  } }, h('h2', {}, t('Change password')),
  field({ name: 'Current', label: 'Current password', type: 'password', required: true, autocomplete: 'current-password' }),
  field({ name: 'New', label: 'New password', type: 'password', required: true, help: t('8–128 characters, letters with digits or symbols.') }),
  field({ name: 'Again', label: 'New password again', type: 'password', required: true }),
  h('button', { class: 'primary', type: 'submit' }, t('Change password')));
  page('My account', h('p', {}, t('Signed in as'), ' ', me.Name),
    me.PasswordResetRequired ? h('p', { class: 'msg error' }, t('Your administrator asks you to set a new password before anything else.')) : null,
    me.MFABindRequired ? h('p', { class: 'msg error' }, t('Your administrator asks you to bind an authenticator app before anything else.')) : null,
    pw, h('h2', {}, t('Second factor (authenticator app)')),
    h('p', {}, me.MFA ? t('Bound: sign-in asks for a code.') : t('Not bound.')), box);
  fill(box, h('button', { type: 'button', onclick: async () => {
    const k = await run(() => post('mfa/begin', {}));
    if (!k) return;
    const f = h('form', { class: 'box', onsubmit: async (ev) => {
      ev.preventDefault();
      if (await run(() => post('mfa/confirm', { Code: formValues(f).Code }), t('Authenticator bound.'))) { await loadMe(); account(); }
    } }, h('p', {}, t('Add this secret to your authenticator app, then enter a code:')), h('p', { class: 'mono' }, k.Secret), h('p', { class: 'mono help' }, k.URI),
    field({ name: 'Code', label: 'Authenticator code', required: true, autocomplete: 'one-time-code' }), h('button', { class: 'primary', type: 'submit' }, t('Confirm')));
    fill(box, f);
    f.querySelector('input').focus();
  } }, t(me.MFA ? 'Bind a new authenticator' : 'Bind an authenticator')));
}

// ---------- routing ----------
const routes = [
  ['overview', 'Overview', overview], ['certificates', 'Certificates', certificates], ['resources', 'Resources', resources],
  ['jobs', 'Jobs', jobs], ['contacts', 'Contacts', contacts], ['credentials', 'Credentials', credentials],
  ['users', 'Users', users, 'ListUsers'], ['audit', 'Audit log', audit, 'LookupAuditEvents'], ['account', 'My account', account],
];

function renderNav(current) {
  const nav = document.getElementById('nav');
  fill(nav, ...routes.filter(r => !r[3] || can(r[3], r[0] === 'users' ? RAM : CERT)).map(([path, label]) =>
    h('a', { href: '#/' + path, 'aria-current': path === current ? 'page' : null }, t(label))));
}

async function route() {
  clearTimeout(pollTimer);
  const [path, query] = (location.hash.slice(2) || 'overview').split('?');
  const q = new URLSearchParams(query || '');
  if (!me && !(await loadMe())) { if (path !== 'signin') clearFlash(); signInPage(); return; }
  if (path === 'signin') { location.hash = '#/overview'; return; }
  document.getElementById('top').hidden = false;
  let [section, id] = path.split('/');
  if ((me.PasswordResetRequired || me.MFABindRequired) && section !== 'account') { section = 'account'; id = undefined; }
  renderNav(section);
  try {
    if (section === 'certificates' && id) await certificate(id);
    else if (section === 'jobs' && id === 'new') await jobWizard();
    else if (section === 'jobs' && id) await job(id);
    else (routes.find(r => r[0] === section) || routes[0])[2](q);
  } catch (e) { flash(e.message, 'error'); }
  document.getElementById('main').focus();
}

function applyLang() {
  document.documentElement.lang = lang() === 'zh' ? 'zh-CN' : 'en';
  document.getElementById('lang').value = lang();
  document.getElementById('signout').textContent = t('Sign out');
  document.querySelector('.skip').textContent = t('Skip to content');
}

document.getElementById('lang').addEventListener('change', (e) => { setLang(e.target.value); applyLang(); route(); });
document.getElementById('signout').addEventListener('click', async () => {
  await post('signout', {}).catch(() => {});
  me = null; location.hash = '#/signin'; route();
});
window.addEventListener('hashchange', () => { clearFlash(); route(); });
applyLang();
route();

#!/usr/bin/env node
/**
 * Generates test/fixtures/redaction-corpus.json: true positives per credential family (fake
 * credentials, random characters in each provider's format) in the contexts a gateway sees them
 * (JSON results, env files, logs, headers, URLs, YAML), personal data, and near misses per family.
 * Deterministic (seeded), so the corpus only changes when this file does:
 *
 *   node scripts/generate-redaction-corpus.mjs
 *
 * Hand-written entries (personal data, near misses) are below; the secrets are generated.
 */
import { writeFileSync } from 'node:fs';

let seed = 0x70019a7e;
/** mulberry32: a small seeded PRNG, so the corpus is reproducible. */
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const LOWER_ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const HEX = '0123456789abcdef';
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const B64 = `${ALNUM}+/`;
const URLSAFE = `${ALNUM}_-`;
const DIGITS = '0123456789';
const pick = (chars, n) => Array.from({ length: n }, () => chars[Math.floor(random() * chars.length)]).join('');
const b64url = (s) => Buffer.from(s).toString('base64url');

/** A PEM body of `lines` random base64 lines. */
const pemBody = (lines) => Array.from({ length: lines }, () => pick(B64, 64));

/** Contexts a secret appears in at the gateway; `name` is the variable/field name to use. */
const contexts = {
  json: (s, name) => `{"id": 4821, "${name}": "${s}", "status": "active"}`,
  env: (s, name) => `${name.toUpperCase()}=${s}`,
  log: (s) => `2025-03-14T09:12:44Z INFO upload started with credential ${s} for bucket reports`,
  yaml: (s, name) => `config:\n  ${name}: ${s}\n  region: eu-west-1`,
  code: (s, name) => `const ${name.replace(/[^A-Za-z0-9]/g, '_')} = '${s}';`,
  plain: (s) => `rotate ${s} before Friday`,
  array: (s) => `{"keys":["${s}"]}`,
  bearer: (s) => `Authorization: Bearer ${s}`,
  query: (s, name) => `GET https://api.example.net/v2/items?${name}=${s}&page=2`,
};

const positives = [];
/** Adds one positive per context; `secret` is what must disappear. */
function add(family, make, ctxNames, name = 'token') {
  for (const ctx of ctxNames) {
    const secret = make();
    positives.push({ family, context: ctx, text: contexts[ctx](secret, name), secret });
  }
}

add('aws', () => `AKIA${pick(B32.slice(0, 26) + '234567', 16)}`, ['json', 'env', 'log', 'plain', 'array'], 'aws_access_key_id');
add('aws', () => `ASIA${pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`, ['json'], 'AccessKeyId');
add('aws', () => pick(`${ALNUM}/+`, 40), ['env', 'json'], 'aws_secret_access_key');
positives.push({
  family: 'aws',
  context: 'docs',
  text: 'aws_access_key_id = AKIAIOSFODNN7EXAMPLE',
  secret: 'AKIAIOSFODNN7EXAMPLE',
  note: "AWS's documented example key: gitleaks' allowlist passes it, toolgate redacts it anyway",
});

add('github', () => `ghp_${pick(ALNUM, 36)}`, ['json', 'env', 'log', 'plain', 'query'], 'github_token');
add('github', () => `github_pat_${pick(ALNUM, 22)}_${pick(ALNUM, 59)}`, ['env', 'log'], 'gh_token');
add('github', () => `gho_${pick(ALNUM, 36)}`, ['json'], 'oauth');
add('github', () => `ghs_${pick(ALNUM, 36)}`, ['bearer'], 'installation');
add('github', () => `ghu_${pick(ALNUM, 36)}`, ['yaml'], 'user_to_server');
add('github', () => `ghr_${pick(ALNUM, 36)}`, ['code'], 'refresh');

add('gitlab', () => `glpat-${pick(URLSAFE, 20)}`, ['json', 'env', 'log', 'plain'], 'private_token');
add('gitlab', () => `glptt-${pick(HEX, 40)}`, ['yaml'], 'trigger');
add('gitlab', () => `GR1348941${pick(URLSAFE, 20)}`, ['code'], 'runner');
add('gitlab', () => `gldt-${pick(URLSAFE, 20)}`, ['array'], 'deploy');

const slackNum = () => pick(DIGITS.slice(1), 1) + pick(DIGITS, 11);
add('slack', () => `xoxb-${slackNum()}-${slackNum()}-${pick(ALNUM, 24)}`, ['json', 'env', 'log'], 'slack_bot_token');
add('slack', () => `xoxp-${slackNum()}-${slackNum()}-${slackNum()}-${pick(HEX, 32)}`, ['yaml', 'plain'], 'slack_user_token');
add(
  'slack',
  () => `https://hooks.slack.com/services/T${pick(B32.slice(0, 26), 8)}/B${pick(B32.slice(0, 26), 8)}/${pick(ALNUM, 24)}`,
  ['json', 'env'],
  'webhook_url',
);
add('slack', () => `xapp-1-A${pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 10)}-${pick(DIGITS, 13)}-${pick(HEX, 64)}`, ['code'], 'app_token');

add('stripe', () => `sk_live_${pick(ALNUM, 24)}`, ['json', 'env', 'log', 'array'], 'stripe_secret');
add('stripe', () => `rk_live_${pick(ALNUM, 99)}`, ['yaml'], 'restricted');
add('stripe', () => `sk_test_${pick(ALNUM, 24)}`, ['code', 'query'], 'stripe');

add('twilio', () => `SK${pick(HEX, 32)}`, ['json', 'env', 'log', 'plain', 'yaml'], 'twilio_api_key');

add('sendgrid', () => `SG.${pick(URLSAFE, 22)}.${pick(URLSAFE, 43)}`, ['json', 'env', 'log', 'bearer', 'array'], 'sendgrid_api_key');

add('openai', () => `sk-proj-${pick(URLSAFE, 74)}T3BlbkFJ${pick(URLSAFE, 74)}`, ['json', 'env', 'bearer'], 'openai_api_key');
add('openai', () => `sk-${pick(ALNUM, 20)}T3BlbkFJ${pick(ALNUM, 20)}`, ['log', 'code'], 'openai');
add('openai', () => `sk-svcacct-${pick(URLSAFE, 58)}T3BlbkFJ${pick(URLSAFE, 58)}`, ['yaml'], 'service_account');
add('openai', () => `sk-proj-${pick(URLSAFE, 48)}`, ['plain'], 'key');

add('anthropic', () => `sk-ant-api03-${pick(URLSAFE, 93)}AA`, ['json', 'env', 'log', 'code'], 'anthropic_api_key');
add('anthropic', () => `sk-ant-admin01-${pick(URLSAFE, 93)}AA`, ['yaml'], 'admin_key');

add('google', () => `AIza${pick(URLSAFE, 35)}`, ['json', 'env', 'log', 'query'], 'key');
add('google', () => `GOCSPX-${pick(URLSAFE, 28)}`, ['json', 'env'], 'client_secret');
add('google', () => `ya29.${pick(URLSAFE, 120)}`, ['bearer'], 'access_token');

for (let i = 0; i < 5; i++) {
  const body = pemBody(6);
  const keyId = pick(HEX, 40);
  const text = JSON.stringify({
    type: 'service_account',
    project_id: 'reports-prod-4821',
    private_key_id: keyId,
    private_key: `-----BEGIN PRIVATE KEY-----\n${body.join('\n')}\n-----END PRIVATE KEY-----\n`,
    client_email: 'uploader@reports-prod-4821.iam.gserviceaccount.com',
  });
  positives.push({ family: 'gcp-service-account', context: 'json', text: i === 4 ? text.slice(0, 300) : text, secret: body[1] });
}

add('azure', () => `${pick(ALNUM, 3)}${pick(DIGITS, 1)}Q~${pick(`${ALNUM}_~.-`, 34)}`, ['json', 'env', 'log'], 'azure_client_secret');
{
  const accountKey = `${pick(B64, 86)}==`;
  positives.push({
    family: 'azure',
    context: 'connection-string',
    text: `DefaultEndpointsProtocol=https;AccountName=reports;AccountKey=${accountKey};EndpointSuffix=core.windows.net`,
    secret: accountKey,
  });
}
{
  const sig = `${pick(ALNUM, 40)}%3D`;
  positives.push({
    family: 'azure',
    context: 'url',
    text: `https://reports.blob.core.windows.net/exports/q1.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2025-04-01T00:00:00Z&sig=${sig}`,
    secret: sig,
  });
}

add('npm', () => `npm_${pick(ALNUM, 36)}`, ['json', 'env', 'log', 'yaml', 'plain'], 'npm_token');
{
  const token = `npm_${pick(ALNUM, 36)}`;
  positives.push({ family: 'npm', context: 'npmrc', text: `//npm.pkg.example.com/:_authToken=${token}`, secret: token });
}

add('pypi', () => `pypi-AgEIcHlwaS5vcmc${pick(URLSAFE, 70)}`, ['json', 'env', 'log', 'yaml', 'code'], 'pypi_token');

add('dockerhub', () => `dckr_pat_${pick(URLSAFE, 27)}`, ['json', 'env', 'log', 'plain', 'yaml'], 'docker_token');

const uuid = () => `${pick(HEX, 8)}-${pick(HEX, 4)}-4${pick(HEX, 3)}-a${pick(HEX, 3)}-${pick(HEX, 12)}`;
add('heroku', () => `HRKU-AA${pick(URLSAFE, 58)}`, ['json', 'log', 'plain'], 'heroku_token');
add('heroku', uuid, ['env', 'json'], 'heroku_api_key');

add('shopify', () => `shpat_${pick(HEX, 32)}`, ['json', 'env', 'log'], 'shopify_token');
add('shopify', () => `shpss_${pick(HEX, 32)}`, ['yaml'], 'shared_secret');
add('shopify', () => `shpca_${pick(HEX, 32)}`, ['plain'], 'custom');

add('mailgun', () => `key-${pick(HEX, 32)}`, ['json', 'env', 'yaml', 'code', 'query'], 'mailgun_api_key');

add('mailchimp', () => `${pick(HEX, 32)}-us${pick(DIGITS, 2)}`, ['json', 'env', 'yaml', 'code', 'query'], 'mailchimp_api_key');

add('datadog', () => pick(LOWER_ALNUM, 40), ['json', 'env', 'yaml', 'code'], 'datadog_app_key');
add('datadog', () => pick(HEX, 32), ['env', 'json'], 'dd_api_key');

// gitleaks' New Relic rules need the product name next to the key: a bare NRAK-... in prose is not found.
add('newrelic', () => `NRAK-${pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', 27)}`, ['json', 'env', 'yaml', 'code'], 'new_relic_api_key');
add('newrelic', () => `NRII-${pick(URLSAFE.replace('_', ''), 32)}`, ['env'], 'newrelic_insert_key');

add('vault', () => `hvs.${pick(URLSAFE, 95)}`, ['json', 'env', 'log', 'bearer'], 'vault_token');
add('vault', () => `hvb.${pick(URLSAFE, 150)}`, ['yaml'], 'batch_token');

add('databricks', () => `dapi${pick(HEX, 32)}`, ['json', 'env', 'log', 'bearer', 'plain'], 'databricks_token');

const jwt = () =>
  `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: `user-${pick(DIGITS, 6)}`, name: 'Canary', iat: 1716239022, scope: 'read write' }))}.${pick(URLSAFE, 43)}`;
add('jwt', jwt, ['json', 'env', 'log', 'bearer', 'query', 'array'], 'id_token');

for (const [kind, lines, truncated] of [
  ['RSA PRIVATE KEY', 8, false],
  ['EC PRIVATE KEY', 3, false],
  ['OPENSSH PRIVATE KEY', 6, false],
  ['PRIVATE KEY', 6, false],
  ['ENCRYPTED PRIVATE KEY', 5, false],
  ['RSA PRIVATE KEY', 8, true],
]) {
  const body = pemBody(lines);
  const pem = `-----BEGIN ${kind}-----\n${body.join('\n')}\n${truncated ? '' : `-----END ${kind}-----\n`}`;
  positives.push({ family: 'private-key', context: truncated ? 'truncated' : 'pem', text: `deploy key:\n${pem}`, secret: body[1] });
}
{
  const body = pemBody(4);
  positives.push({
    family: 'private-key',
    context: 'json-escaped',
    text: JSON.stringify({ key: `-----BEGIN EC PRIVATE KEY-----\n${body.join('\n')}\n-----END EC PRIVATE KEY-----` }),
    secret: body[2],
  });
}

const password = () => `${pick(ALNUM, 6)}-${pick(ALNUM, 5)}!${pick(DIGITS, 2)}`;
const genericCases = [
  (s) => `DB_PASSWORD=${s}`,
  (s) => `{"username": "svc-reports", "password": "${s}"}`,
  (s) => `password: ${s}`,
  (s) => `"client_secret": "${s}"`,
  (s) => `api_key=${s}`,
  (s) => `X-Api-Key: ${s}`,
  (s) => `Authorization: Bearer ${s}`,
  (s) => `Authorization: Basic ${s}`,
  (s) => `{"auth_token":"${s}","expires_in":3600}`,
  (s) => `settings.secret_key = "${s}"`,
  (s) => `passwd=${s} user=backup`,
  (s) => `curl -u admin:${s} https://ci.example.com/api/json`,
  (s) => `curl -H "X-Auth-Token: ${s}" https://ci.example.com/api`,
  (s) => `<add key="Password" value="${s}" />`,
];
genericCases.forEach((make, i) => {
  // Header values are tokens (no punctuation); assignments get passwords with punctuation.
  const header = i === 5 || i === 6 || i === 12;
  const secret = i === 7 ? Buffer.from(`admin:${password()}`).toString('base64') : !header && i % 3 === 0 ? password() : pick(ALNUM, 32);
  positives.push({ family: 'generic-key-value', context: 'key=value', text: make(secret), secret });
});

for (const [scheme, port] of [
  ['postgres', 5432],
  ['mysql', 3306],
  ['mongodb+srv', 0],
  ['redis', 6379],
  ['amqp', 5672],
  ['https', 0],
]) {
  const pw = password();
  positives.push({
    family: 'url-credentials',
    context: 'url',
    text: `DATABASE_URL=${scheme}://app:${pw}@db.internal${port ? `:${port}` : ''}/reports`,
    secret: pw,
  });
}

add('digitalocean', () => `dop_v1_${pick(HEX, 64)}`, ['json', 'env', 'log', 'bearer', 'yaml'], 'do_token');
add('huggingface', () => `hf_${pick('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 34)}`, ['json', 'env', 'log', 'bearer', 'plain'], 'hf_token');
add('linear', () => `lin_api_${pick(ALNUM, 40)}`, ['json', 'env', 'log', 'plain', 'yaml'], 'linear_key');
add('postman', () => `PMAK-${pick(HEX, 24)}-${pick(HEX, 34)}`, ['json', 'env', 'log', 'plain', 'yaml'], 'postman_api_key');
add('pulumi', () => `pul-${pick(HEX, 40)}`, ['json', 'env', 'log', 'plain', 'yaml'], 'pulumi_access_token');
add('sentry', () => `sntryu_${pick(HEX, 64)}`, ['json', 'env', 'log', 'bearer', 'plain'], 'sentry_auth_token');
add('square', () => `sq0atp-${pick(URLSAFE, 22)}`, ['json', 'env', 'log'], 'square_token');
add('square', () => `EAAA${pick(URLSAFE, 60)}`, ['bearer', 'yaml'], 'square_access_token');
add('grafana', () => `glsa_${pick(ALNUM, 32)}_${pick(HEX, 8)}`, ['json', 'env', 'log', 'bearer', 'plain'], 'grafana_token');
add('doppler', () => `dp.pt.${pick(ALNUM, 43)}`, ['json', 'env', 'log', 'plain', 'yaml'], 'doppler_token');
add('age', () => `AGE-SECRET-KEY-1${pick('QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L', 58)}`, ['plain', 'env', 'json', 'yaml', 'log'], 'age_key');
add('telegram', () => `${pick(DIGITS.slice(1), 1)}${pick(DIGITS, 9)}:A${pick(URLSAFE, 34)}`, ['json', 'env', 'yaml', 'code'], 'telegram_bot_token');
add(
  'dynatrace',
  () => `dt0c01.${pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 24)}.${pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 64)}`,
  ['json', 'env', 'log', 'bearer', 'plain'],
  'dt_api_token',
);
add('terraform', () => `${pick(ALNUM, 14)}.atlasv1.${pick(URLSAFE, 67)}`, ['json', 'env', 'log', 'plain', 'yaml'], 'tfe_token');

// --- personal data (hand-written: valid checksums, real formats) -------------------------------
const pii = [
  ['email', 'contact maria.gonzalez@example.com for access', 'maria.gonzalez@example.com'],
  ['email', '{"owner":"j.smith+billing@corp.example.co.uk"}', 'j.smith+billing@corp.example.co.uk'],
  ['email', 'From: Ops Team <ops-team@mail.example.org>', 'ops-team@mail.example.org'],
  ['email', 'reply-to=anna_k@example.io;', 'anna_k@example.io'],
  ['email', 'user: "ÉMILE.dupont@example.fr"', 'dupont@example.fr'],
  ['card', 'card 4111 1111 1111 1111 exp 12/27', '4111 1111 1111 1111'],
  ['card', '{"pan":"5555555555554444"}', '5555555555554444'],
  ['card', 'amex 3782-822463-10005', '3782-822463-10005'],
  ['card', 'paid with 6011111111111117.', '6011111111111117'],
  ['card', 'visa 4012-8888-8888-1881 declined', '4012-8888-8888-1881'],
  ['card', 'JCB 3530111333300000', '3530111333300000'],
  ['iban', 'IBAN DE89 3704 0044 0532 0130 00', 'DE89 3704 0044 0532 0130 00'],
  ['iban', '{"iban":"GB82WEST12345698765432"}', 'GB82WEST12345698765432'],
  ['iban', 'pay to FR1420041010050500013M02606 by Friday', 'FR1420041010050500013M02606'],
  ['iban', 'NL91ABNA0417164300', 'NL91ABNA0417164300'],
  ['iban', 'konto CH9300762011623852957', 'CH9300762011623852957'],
  ['us-ssn', 'SSN 536-90-4399 on file', '536-90-4399'],
  ['us-ssn', '{"ssn":"SSN: 287654321"}', '287654321'],
  ['us-ssn', 'tax id 401 22 8765', '401 22 8765'],
  ['us-ssn', 'applicant ssn=123-45-6780', '123-45-6780'],
  ['us-ssn', 'SSN#772-10-3456', '772-10-3456'],
  ['uk-nino', 'NI number AB 12 34 56 C', 'AB 12 34 56 C'],
  ['uk-nino', '{"nino":"JG103759A"}', 'JG103759A'],
  ['uk-nino', 'employee NINO: CE123456D', 'CE123456D'],
  ['uk-nino', 'ni=PR 44 55 66 B', 'PR 44 55 66 B'],
  ['uk-nino', 'National Insurance WL654321A ok', 'WL654321A'],
  ['phone', 'call +1 415 555 2671 after 5', '+1 415 555 2671'],
  ['phone', 'tel: (212) 555-0187', '(212) 555-0187'],
  ['phone', 'Mobil +49 1512 3456789', '+49 1512 3456789'],
  ['phone', 'UK office +44 20 7946 0958', '+44 20 7946 0958'],
  ['phone', '{"phone":"+33 1 42 68 53 00"}', '+33 1 42 68 53 00'],
];
for (const [family, text, secret] of pii) positives.push({ family, context: 'pii', text, secret });

// --- near misses: look like a family's secrets, are not ----------------------------------------
const negatives = [
  // aws
  ['aws', 'AKIA1234', 'AKIA prefix, too short'],
  ['aws', 'ASIAN-FUSION-RESTAURANT-LIST', 'ASIA word'],
  ['aws', 'arn:aws:iam::123456789012:role/reports-uploader', 'ARN with account id'],
  ['aws', '{"aws_region": "eu-west-1", "aws_account_id": "123456789012"}', 'region and account id'],
  // github
  ['github', 'ghp_short', 'GitHub prefix, too short'],
  ['github', 'see https://github.com/acme/reports/pull/4821', 'GitHub URL'],
  ['github', 'commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it', 'git SHA-1'],
  ['github', '{"sha": "e83c5163316f89bfbde7d9ab23ca2e25604af290", "ref": "refs/heads/main"}', 'git SHA in JSON'],
  // gitlab
  ['gitlab', 'glpat-short', 'GitLab prefix, too short'],
  ['gitlab', 'project_id=4821 pipeline_id=99182', 'GitLab ids'],
  // slack
  ['slack', 'xoxo hugs', 'xox word'],
  ['slack', 'posted to https://hooks.slack.com/ (no path)', 'Slack hook host only'],
  ['slack', 'channel C024BE91L ts 1503435956.000247', 'Slack channel id and ts'],
  // stripe
  ['stripe', 'sk_live_', 'empty Stripe key'],
  ['stripe', '{"id": "ch_3MmlLrLkdIwHu7ix0snN0B15", "object": "charge"}', 'Stripe object id'],
  ['stripe', 'customer cus_NffrFeUfNV2Hib', 'Stripe customer id'],
  // twilio
  ['twilio', 'task SKIPPED for item 4821', 'SK word'],
  ['twilio', 'message SM1234 queued', 'short Twilio-like id'],
  // sendgrid
  ['sendgrid', 'SG.short.value', 'SG. prefix, too short'],
  ['sendgrid', 'see section SG.4.2 of the guide', 'section number'],
  // openai
  ['openai', 'sk-test-not-a-key', 'sk- prefix, not a key'],
  ['openai', '{"model": "gpt-4o-mini", "usage": {"total_tokens": 1234}}', 'OpenAI response metadata'],
  ['openai', 'task-proj-alpha-2025', 'proj word'],
  // anthropic
  ['anthropic', '{"model": "claude-3-5-sonnet-20241022", "stop_reason": "end_turn"}', 'Anthropic response metadata'],
  ['anthropic', 'sk-ant-api03-short', 'Anthropic prefix, too short'],
  // google
  ['google', 'AIzaShort', 'short AIza prefix'],
  ['google', 'https://www.googleapis.com/oauth2/v4/token', 'Google token endpoint'],
  ['google', 'ya29 is a region code', 'ya29 word'],
  // gcp service account
  [
    'gcp-service-account',
    '{"type": "service_account", "project_id": "reports-prod-4821", "client_id": "103958127463529384756"}',
    'service account metadata without key',
  ],
  ['gcp-service-account', '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----', 'public key'],
  // azure
  ['azure', 'https://reports.blob.core.windows.net/exports/q1.csv', 'blob URL without SAS'],
  ['azure', 'accountKey rotation policy', 'words account key'],
  ['azure', 'tenant 72f988bf-86f1-41af-91ab-2d7cd011db47', 'Azure tenant id (UUID)'],
  // npm
  ['npm', 'npm_config_cache=/tmp/.npm', 'npm config variable'],
  ['npm', 'npm install @acme/reports@1.24.0', 'npm install with version'],
  // pypi
  ['pypi', 'pip install requests==2.32.3', 'pip install with version'],
  ['pypi', 'https://packages.example.org/project/requests/', 'package index URL'],
  // dockerhub
  ['dockerhub', 'docker pull acme/reports:1.24.0@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'image digest'],
  ['dockerhub', 'dckr_pat_', 'empty Docker prefix'],
  // heroku
  ['heroku', 'heroku apps:create reports-prod', 'Heroku CLI'],
  ['heroku', '{"app_id": "01234567-89ab-4cde-8f01-23456789abcd"}', 'UUID app id'],
  // shopify
  ['shopify', 'https://acme.myshopify.com/admin/orders/4821.json', 'Shopify URL'],
  ['shopify', 'shpat_', 'empty Shopify prefix'],
  // mailgun
  ['mailgun', 'mailgun domain: mg.example.com', 'Mailgun domain'],
  ['mailgun', 'key-value store', 'key- word'],
  // mailchimp
  ['mailchimp', 'mailchimp list_id: a1b2c3d4e5', 'Mailchimp list id'],
  ['mailchimp', 'server prefix us12', 'Mailchimp server prefix'],
  // datadog
  ['datadog', 'datadog site: datadoghq.eu', 'Datadog site'],
  ['datadog', 'dd.trace_id=1234567890123456789 dd.span_id=987654321', 'Datadog trace ids'],
  // newrelic
  ['newrelic', 'newrelic account_id: 1234567', 'New Relic account id'],
  ['newrelic', 'NRAK-short', 'NRAK prefix, too short'],
  // vault
  ['vault', 'vault kv get secret/reports/db', 'Vault path'],
  ['vault', 'hvs.short', 'hvs prefix, too short'],
  // databricks
  ['databricks', 'dapi endpoint https://adb-1234567890123456.7.azuredatabricks.net', 'Databricks workspace URL'],
  ['databricks', 'cluster_id: 0412-221025-abcd1234', 'Databricks cluster id'],
  // jwt
  ['jwt', 'eyJhbGciOiJIUzI1NiJ9 alone', 'JWT header only'],
  ['jwt', 'hey, eyes on the keyboard', 'ey words'],
  // private keys
  ['private-key', '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----', 'certificate'],
  ['private-key', 'private_key_path: /etc/ssl/private/server.key', 'private key file path'],
  ['private-key', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example', 'SSH public key'],
  // generic key/value
  ['generic-key-value', 'Please use the password reset link to choose a new password.', 'the word password'],
  ['generic-key-value', 'password: required', 'placeholder value'],
  ['generic-key-value', 'password=******** (hidden)', 'masked value'],
  ['generic-key-value', 'secret: true', 'boolean flag'],
  ['generic-key-value', 'password=${DB_PASSWORD}', 'template reference'],
  ['generic-key-value', 'api_key: YOUR_API_KEY_HERE', 'documentation placeholder'],
  ['generic-key-value', 'api_key=<your-api-key>', 'angle-bracket placeholder'],
  ['generic-key-value', 'The API key rotation is scheduled for Friday.', 'words api key'],
  ['generic-key-value', 'Bearer of bad news, bearer authentication explained', 'the word bearer'],
  ['generic-key-value', 'Authorization: Bearer <token>', 'placeholder bearer'],
  ['generic-key-value', 'tokens_used: 1234, token_count: 5', 'token counters'],
  ['generic-key-value', '{"request_id": "123e4567-e89b-12d3-a456-426614174000", "status": "ok"}', 'UUID request id'],
  ['generic-key-value', '{"id": "9b2f4c1e-7d3a-4e8f-b6a5-0c1d2e3f4a5b", "key": 7}', 'UUID id and numeric key'],
  ['generic-key-value', 'sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'sha256 labelled hex'],
  ['generic-key-value', '{"checksum_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}', 'sha256 in JSON'],
  ['generic-key-value', '{"api_version": "2024-06-01", "auth_method": "oauth2"}', 'api version and auth method'],
  ['generic-key-value', 'auth_url: https://login.example.com/oauth2/authorize', 'auth URL'],
  ['generic-key-value', 'api_endpoint=https://api.example.com/v1/reports', 'API endpoint'],
  ['generic-key-value', '{"secret_name": "reports-db-credentials", "key_id": 42}', 'secret name and key id'],
  ['generic-key-value', 'cache_key=user:4821:profile', 'cache key'],
  ['generic-key-value', 'description_b64: VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcw==', 'base64 of ordinary words'],
  ['generic-key-value', 'base64 aGVsbG8gd29ybGQ=', 'short base64'],
  ['generic-key-value', 'keyboard: qwerty, monkey: george', 'key-containing words'],
  ['generic-key-value', 'ssh_key_file=/home/deploy/.ssh/id_ed25519', 'key file path'],
  ['generic-key-value', 'token_type: bearer', 'token type'],
  ['generic-key-value', '{"access_id": "reports-reader", "public_key": "reports.pub"}', 'access id and public key name'],
  // url credentials
  ['url-credentials', 'https://example.com:8080/path@foo', 'port and @ in path'],
  ['url-credentials', 'postgres://app@db.internal:5432/app', 'connection string without password'],
  ['url-credentials', 'postgres://app:${DB_PASSWORD}@db.internal/app', 'templated password'],
  ['url-credentials', 'git@github.com:acme/reports.git', 'git SSH remote'],
  ['url-credentials', 'https://docs.example.com/guide#section-2', 'plain URL'],
  // other providers
  ['digitalocean', 'dop_v1_short', 'DO prefix, too short'],
  ['huggingface', 'hf_hub_download(repo_id="gpt2")', 'hf_ function name'],
  ['linear', 'lin_api_docs', 'Linear prefix word'],
  ['postman', 'PMAK-short', 'Postman prefix, too short'],
  ['pulumi', 'pulumi up --stack prod', 'Pulumi CLI'],
  ['sentry', 'sentry_dsn_env=production', 'Sentry setting'],
  ['square', 'sq0atp-short', 'Square prefix, too short'],
  ['grafana', 'glsa_short', 'Grafana prefix, too short'],
  ['doppler', 'dp.pt.short', 'Doppler prefix, too short'],
  ['age', 'age-secret-key-1 is the prefix of age keys', 'age prefix alone'],
  ['telegram', 'telegram chat_id: -1001234567890', 'Telegram chat id'],
  ['dynatrace', 'dt0c01.short', 'Dynatrace prefix, too short'],
  ['terraform', 'terraform plan -out=tfplan', 'Terraform CLI'],
  // personal data
  ['card', 'order 4516690207855295 shipped', '16-digit number failing Luhn'],
  ['card', 'tracking 1700000000000 ms', '13-digit epoch millis'],
  ['card', 'invoice 9234567890123456', '16 digits, no card network prefix, Luhn-invalid'],
  ['card', 'ref 9637296780344970', 'Luhn-valid 16 digits with no card network prefix'],
  ['card', 'price 1,234,567.89 USD', 'amount'],
  ['iban', 'IBAN DE89 3704 0044 0532 0130 01 (typo)', 'IBAN bad checksum'],
  ['iban', 'GB00NWBK60161331926819', 'IBAN bad check digits'],
  ['iban', 'XX89370400440532013000', 'IBAN unknown country'],
  ['us-ssn', 'SSN 000-12-3456', 'SSN area 000'],
  ['us-ssn', 'SSN 666-12-3456', 'SSN area 666'],
  ['us-ssn', 'SSN 912-34-5678', 'SSN area 9xx (ITIN)'],
  ['us-ssn', 'SSN 123-00-4567', 'SSN group 00'],
  ['us-ssn', 'SSN 123-45-0000', 'SSN serial 0000'],
  ['us-ssn', 'SSN 078-05-1120', 'Woolworth example SSN'],
  ['uk-nino', 'AB 12 34 56', 'NINO-like without suffix'],
  ['uk-nino', 'GB123456A', 'NINO with never-allocated prefix GB'],
  ['uk-nino', 'NI number QQ 12 34 56 C', 'the HMRC specimen NINO (Q is never a first letter)'],
  ['phone', 'id 4155552671', 'bare 10-digit id (phone-like)'],
  ['phone', 'phone extension 5551', 'short number'],
  ['phone', 'date 2024-01-15 and time 10:30:00', 'date and time'],
  ['phone', 'version 1.24.0 on 10.0.0.1', 'version and IP'],
  ['phone', 'ISBN 978-3-16-148410-0', 'ISBN'],
  ['email', 'git@github', 'no TLD'],
  ['email', 'see @maria in #ops', 'mention'],
  ['email', 'user@localhost', 'local host, no TLD'],
  ['email', 'npm install @acme/reports', 'scoped package'],
].map(([family, text, note]) => ({ family, text, note }));

const corpus = {
  description:
    'Redaction corpus (generated by scripts/generate-redaction-corpus.mjs; fake credentials): positives name their family and the exact substring that must disappear; near misses must stay untouched.',
  positives,
  negatives,
};
writeFileSync(new URL('../test/fixtures/redaction-corpus.json', import.meta.url), `${JSON.stringify(corpus, null, 1)}\n`);
const families = new Set(positives.map((p) => p.family));
console.log(`${positives.length} positives in ${families.size} families, ${negatives.length} near misses`);

# ruff: noqa: E501  (case templates read best on one line)
"""Generate the privacy shield's labelled fixture set: `cases.jsonl` beside this script.

    .venv/bin/python tests/data/shield/generate.py          # rewrites cases.jsonl (seed 6)

Every value is synthetic, made here from a fixed seed: secrets have their vendor's format
(prefixes, lengths, alphabets), IBANs their ISO 7064 check digits, card numbers their Luhn digit,
phone numbers pass libphonenumber's validation. No real leaked secret is copied.

Each line: `id`, `label` (1 = holds a secret or personal data, 0 = a hard negative), `kind` (the
detector kind a positive must be found as; null for negatives), `family` (how the case was
made), `text` and `spans` ([start, end, kind] of each sensitive value in `text`).

Labelling decisions (docs/shield.md):
- Vendor example keys published in documentation (AKIAIOSFODNN7EXAMPLE, ...EXAMPLEKEY) and
  placeholders (`<your-api-key>`, `${TOKEN}`, `xxxx...`) are negatives: they protect nothing.
- Code identifiers that merely name a secret (`get_password()`, `max_tokens`) are negatives.
- Addresses at reserved example domains (RFC 2606: example.com/.org/.net) are negatives.
- Card numbers are positives whenever brand prefix, length and Luhn digit fit (test numbers
  included: the shield cannot tell them from issued ones).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import phonenumbers

SEED = 6
OUT = Path(__file__).with_name("cases.jsonl")

ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"


class Maker:
    """Random values of the right shape, from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def pick(self, options: list[str] | tuple[str, ...]) -> str:
        return self.r.choice(options)

    def b64url(self, raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def password(self) -> str:
        words = ["Falcon", "river", "Orbit", "maple", "Quartz", "tundra", "Cobalt", "ember"]
        return f"{self.pick(words)}{self.r.randint(10, 9999)}{self.pick('!#%&*?@$')}{self.pick(words).lower()}"


# ---------------------------------------------------------------------------------- secrets


def aws_access_key(m: Maker) -> str:
    return m.pick(("AKIA", "ASIA")) + m.chars(string.ascii_uppercase + "234567", 16)


def aws_secret_key(m: Maker) -> str:
    return m.chars(B64, 40)


def gcp_api_key(m: Maker) -> str:
    return "AIza" + m.chars(ALNUM + "-_", 35)


def gcp_oauth_secret(m: Maker) -> str:
    return "GOCSPX-" + m.chars(ALNUM + "-_", 28)


def azure_storage_key(m: Maker) -> str:
    return base64.b64encode(m.r.randbytes(64)).decode()


def azure_client_secret(m: Maker) -> str:
    return m.chars(ALNUM, 3) + str(m.r.randint(0, 9)) + "Q~" + m.chars(ALNUM + "_~.-", 34)


def github_token(m: Maker) -> str:
    if m.r.random() < 0.3:
        return "github_pat_" + m.chars(ALNUM, 22) + "_" + m.chars(ALNUM, 59)
    return m.pick(("ghp_", "gho_", "ghs_", "ghu_")) + m.chars(ALNUM, 36)


def gitlab_token(m: Maker) -> str:
    return "glpat-" + m.chars(ALNUM + "-_", 20)


def npm_token(m: Maker) -> str:
    return "npm_" + m.chars(ALNUM, 36)


def pypi_token(m: Maker) -> str:
    return "pypi-AgEIcHlwaS5vcmc" + m.chars(B64URL, 120)


def dockerhub_token(m: Maker) -> str:
    return "dckr_pat_" + m.chars(ALNUM + "-_", 27)


def slack_token(m: Maker) -> str:
    digits = string.digits
    return f"xoxb-{m.chars(digits, 12)}-{m.chars(digits, 13)}-{m.chars(ALNUM, 24)}"


def slack_webhook(m: Maker) -> str:
    return (
        f"https://hooks.slack.com/services/T{m.chars(UPPER_ALNUM, 8)}/B{m.chars(UPPER_ALNUM, 10)}"
        f"/{m.chars(ALNUM, 24)}"
    )


def discord_webhook(m: Maker) -> str:
    return (
        f"https://discord.com/api/webhooks/{m.r.randint(10**17, 10**18 - 1)}/{m.chars(B64URL, 68)}"
    )


def teams_webhook(m: Maker) -> str:
    def u() -> str:
        return str(uuid.UUID(int=m.r.getrandbits(128), version=4))

    return (
        f"https://acme.webhook.office.com/webhookb2/{u()}@{u()}/IncomingWebhook/"
        f"{m.chars(HEX, 32)}/{u()}"
    )


def telegram_bot_token(m: Maker) -> str:
    return f"{m.r.randint(10**8, 10**10 - 1)}:AA{m.chars(B64URL, 33)}"


def stripe_key(m: Maker) -> str:
    return m.pick(("sk_live_", "rk_live_", "sk_test_")) + m.chars(ALNUM, m.r.choice((24, 99)))


def twilio_key(m: Maker) -> str:
    return "SK" + m.chars(HEX, 32)


def sendgrid_key(m: Maker) -> str:
    return f"SG.{m.chars(B64URL, 22)}.{m.chars(B64URL, 43)}"


def mailchimp_key(m: Maker) -> str:
    return f"{m.chars(HEX, 32)}-us{m.r.randint(1, 21)}"


def openai_key(m: Maker) -> str:
    return f"sk-proj-{m.chars(ALNUM, 20)}T3BlbkFJ{m.chars(ALNUM, 20)}"


def anthropic_key(m: Maker) -> str:
    return f"sk-ant-api03-{m.chars(B64URL, 93)}AA"


def huggingface_token(m: Maker) -> str:
    return "hf_" + m.chars(string.ascii_letters, 34)


def square_token(m: Maker) -> str:
    return "sq0atp-" + m.chars(ALNUM + "-_", 22)


def jwt(m: Maker) -> str:
    header = m.b64url(json.dumps({"alg": m.pick(("HS256", "RS256")), "typ": "JWT"}).encode())
    claims = {
        "sub": str(m.r.randint(1000, 99999)),
        "iat": m.r.randint(1_600_000_000, 1_800_000_000),
    }
    payload = m.b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{m.b64url(m.r.randbytes(32))}"


def private_key(m: Maker) -> str:
    label = m.pick(("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"))
    body = base64.b64encode(m.r.randbytes(m.r.randint(120, 600))).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----"


def http_bearer(m: Maker) -> str:
    return m.chars(B64URL, m.r.randint(32, 48))


# ---------------------------------------------------------------------------------- personal data

FIRST = ["jane", "omar", "li", "sofia", "mateo", "anna", "kwame", "priya", "lukas", "chloe"]
LAST = ["doe", "haddad", "wei", "rossi", "garcia", "novak", "mensah", "iyer", "becker", "martin"]
DOMAINS = [
    "acme-corp.io",
    "gmail.com",
    "outlook.de",
    "uni-heidelberg.de",
    "fastmail.fm",
    "corp.co.uk",
]


def email(m: Maker) -> str:
    sep = m.pick((".", "_", ""))
    return f"{m.pick(FIRST)}{sep}{m.pick(LAST)}{m.r.randint(1, 99) if m.r.random() < 0.3 else ''}@{m.pick(DOMAINS)}"


def phone(m: Maker) -> str:
    while True:
        style = m.r.randint(0, 4)
        if style == 0:
            text = f"({m.pick(('212', '415', '617', '312', '206'))}) {m.r.randint(200, 999)}-{m.r.randint(0, 9999):04d}"
            region = "US"
        elif style == 1:
            text = f"+1 {m.pick(('646', '510', '303'))} {m.r.randint(200, 999)} {m.r.randint(0, 9999):04d}"
            region = None
        elif style == 2:
            text = f"+44 20 {m.r.randint(7000, 8999)} {m.r.randint(0, 9999):04d}"
            region = None
        elif style == 3:
            text = f"+49 30 {m.r.randint(1000000, 9999999)}"
            region = None
        else:
            text = f"+33 1 {m.r.randint(10, 99)} {m.r.randint(10, 99)} {m.r.randint(10, 99)} {m.r.randint(10, 99)}"
            region = None
        if phonenumbers.is_valid_number(phonenumbers.parse(text, region)):
            return text


def _iban_check(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{98 - int(digits) % 97:02d}"


def iban(m: Maker, spaced: bool | None = None) -> str:
    country, bban = m.pick(
        (
            ("DE", m.chars(string.digits, 18)),
            ("GB", "NWBK" + m.chars(string.digits, 14)),
            (
                "FR",
                m.chars(string.digits, 10) + m.chars(UPPER_ALNUM, 11) + m.chars(string.digits, 2),
            ),
            ("NL", "ABNA" + m.chars(string.digits, 10)),
            ("ES", m.chars(string.digits, 20)),
        )
    )
    compact = country + _iban_check(country, bban) + bban
    if spaced is None:
        spaced = m.r.random() < 0.6
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)) if spaced else compact


def _luhn_digit(partial: str) -> str:
    total = 0
    for position, char in enumerate(reversed(partial)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def payment_card(m: Maker) -> str:
    brands = (("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("37", 15), ("6011", 16))
    prefix, length = m.r.choice(brands)
    partial = prefix + m.chars(string.digits, length - len(prefix) - 1)
    number = partial + _luhn_digit(partial)
    style = m.r.randint(0, 2)
    if style == 0:
        return number
    sep = " " if style == 1 else "-"
    if len(number) == 15:
        return sep.join((number[:4], number[4:10], number[10:]))
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


# ---------------------------------------------------------------------------------- positives

Template = tuple[str, ...]
POSITIVES: dict[str, tuple[Callable[[Maker], str], Template]] = {
    "aws_access_key": (aws_access_key, (
        "Deploy script uses access key {v} for the eu-west-1 bucket.",
        "[default]\naws_access_key_id = {v}\nregion = us-east-1",
        "export AWS_ACCESS_KEY_ID={v}",
    )),
    "aws_secret_key": (aws_secret_key, (
        "[prod]\naws_access_key_id = AKIA{pad}\naws_secret_access_key = {v}\n",
        'export AWS_SECRET_ACCESS_KEY="{v}"',
        "aws_secret_access_key: {v}",
    )),
    "gcp_api_key": (gcp_api_key, (
        "Maps widget key: {v} (restricted to our referrers)",
        '<script src="https://maps.googleapis.com/maps/api/js?key={v}"></script>',
    )),
    "gcp_oauth_secret": (gcp_oauth_secret, ('{{"client_id": "12345.apps.googleusercontent.com", "client_secret": "{v}"}}',)),
    "azure_storage_key": (azure_storage_key, (
        "DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey={v};EndpointSuffix=core.windows.net",
    )),
    "azure_client_secret": (azure_client_secret, ("AZURE_CLIENT_SECRET={v}", "The app registration secret is {v}, expires in June.")),
    "github_token": (github_token, (
        "Use {v} to push to the release repo.",
        "GITHUB_TOKEN={v}",
        "git clone https://x-access-token:{v}@github.com/acme/infra.git",
    )),
    "gitlab_token": (gitlab_token, ("curl --header 'PRIVATE-TOKEN: {v}' https://gitlab.acme.io/api/v4/projects",)),
    "npm_token": (npm_token, ("//registry.npmjs.org/:_authToken={v}", "The CI publish token is {v}.")),
    "pypi_token": (pypi_token, ("[pypi]\nusername = __token__\npassword = {v}",)),
    "dockerhub_token": (dockerhub_token, ("docker login -u acmebot -p {v}",)),
    "slack_token": (slack_token, ("Bot token for #alerts is {v}", "SLACK_BOT_TOKEN={v}")),
    "slack_webhook": (slack_webhook, ("Post deploy notices to {v}",)),
    "discord_webhook": (discord_webhook, ("Community announcements go to {v} every Monday.",)),
    "teams_webhook": (teams_webhook, ("Incident channel webhook: {v}",)),
    "telegram_bot_token": (telegram_bot_token, ("The on-call bot runs with token {v}.",)),
    "stripe_key": (stripe_key, ('Stripe.api_key = "{v}"', "Billing uses {v} in production.")),
    "twilio_key": (twilio_key, ("Twilio API key SID {v} belongs to the SMS relay.",)),
    "sendgrid_key": (sendgrid_key, ("SENDGRID_API_KEY={v}",)),
    "mailchimp_key": (mailchimp_key, ("Newsletter sync uses Mailchimp key {v}.",)),
    "openai_key": (openai_key, ("OPENAI_API_KEY={v}",)),
    "anthropic_key": (anthropic_key, ("export ANTHROPIC_API_KEY={v}",)),
    "huggingface_token": (huggingface_token, ("huggingface-cli login --token {v}",)),
    "square_token": (square_token, ("Square sandbox access token: {v}",)),
    "jwt": (jwt, (
        "Authorization header captured in the trace: Bearer {v}",
        "session cookie = {v}",
    )),
    "private_key": (private_key, ("Here is the deploy key, keep it safe:\n{v}\n", '{{"private_key": "{v}"}}')),
    "url_password": (lambda m: m.password(), (
        "DATABASE_URL=postgres://app_rw:{v}@db-2.internal:5432/orders",
        "Broker: amqp://worker:{v}@rabbit.acme.io:5672/jobs",
        "redis://:{v}@cache-1.acme.io:6379/0",
        "mongodb+srv://analytics:{v}@cluster0.abcde.mongodb.net/?retryWrites=true",
    )),
    "connection_string": (lambda m: m.password(), (
        "Server=sql-prod-3;Database=Billing;User Id=svc_billing;Password={v};Encrypt=True;",
        'connectionString="Data Source=10.2.0.7;Initial Catalog=crm;User ID=crm_app;Password={v}"',
        "Provider=SQLOLEDB;User ID=ops_etl;Password ={v};Data Source=sql-7;",
    )),
    "generic_secret": (lambda m: m.password(), (
        'db_password = "{v}"',
        "SMTP_PASSWORD={v}",
        '{{"username": "svc-reports", "password": "{v}"}}',
        "The admin password is '{v}' until we rotate it on Friday.",
        "spring.datasource.password: {v}",
        'client_secret: "{v}"',
        "buildConfigField 'String', 'API_KEY', '\"{v}\"'",
    )),
    "http_auth_header": (http_bearer, ('curl -H "Authorization: Bearer {v}" https://api.acme.io/v2/orders',)),
    "email": (email, (
        "Send the contract to {v} before Thursday.",
        "Reporter: {v} (customer since 2019)",
        "cc: {v}; {v2}",
    )),
    "phone": (phone, (
        "Call the site manager at {v} if the delivery is late.",
        "Customer callback number: {v}",
        "Contact: Priya Iyer, {v}",
    )),
    "iban": (iban, (
        "Refund to IBAN {v} (account holder: L. Becker).",
        "Please wire the deposit to {v} by the 15th.",
    )),
    "payment_card": (payment_card, (
        "Customer read out card {v}, expiry 09/27.",
        "Charge failed for card number {v}; retry tomorrow.",
    )),
}  # fmt: skip

PER_KIND = {
    "generic_secret": 12,
    "url_password": 8,
    "email": 12,
    "phone": 12,
    "iban": 10,
    "payment_card": 12,
}


def positives(m: Maker) -> list[dict[str, Any]]:
    cases = []
    for kind, (make, templates) in POSITIVES.items():
        for n in range(PER_KIND.get(kind, 4)):
            template = templates[n % len(templates)]
            value = make(m)
            fill = {"v": value, "pad": m.chars(string.ascii_uppercase + "234567", 16)}
            if "{v2}" in template:
                fill["v2"] = make(m)
            if template.startswith('{"private_key"'):
                fill["v"] = value.replace("\n", "\\n")
            text = template.format(**fill)
            spans = []
            for key in ("v", "v2"):
                if key in fill and "{" + key + "}" in template:
                    start = text.index(fill[key])
                    spans.append([start, start + len(fill[key]), kind])
            cases.append({"label": 1, "kind": kind, "family": kind, "text": text, "spans": spans})
    return cases


# ---------------------------------------------------------------------------------- negatives


def negatives(m: Maker) -> list[dict[str, Any]]:
    out: list[tuple[str, str]] = []

    def add(family: str, text: str) -> None:
        out.append((family, text))

    for _ in range(40):
        u = str(uuid.UUID(int=m.r.getrandbits(128), version=4))
        add(
            "uuid",
            m.pick(
                (f"Request {u} timed out after 30 s.", f"tenant_id = {u}", f'"trace_id": "{u}"')
            ),
        )
    for _ in range(40):
        sha = m.chars(HEX, 40)
        add(
            "git_sha",
            m.pick(
                (
                    f"Fixed in commit {sha}.",
                    f"git revert {sha[:12]}",
                    f"Merge {sha} into main",
                    f"ref: {sha}",
                )
            ),
        )
    for _ in range(30):
        digest = hashlib.sha256(m.r.randbytes(16)).hexdigest()
        add(
            "hash",
            m.pick(
                (
                    f"sha256sum: {digest}  release.tar.gz",
                    f"docker pull ghcr.io/acme/api@sha256:{digest}",
                    f'ETag: "{hashlib.md5(m.r.randbytes(8)).hexdigest()}"',
                    f'"integrity": "sha512-{base64.b64encode(hashlib.sha512(m.r.randbytes(8)).digest()).decode()}"',
                )
            ),
        )
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    for _ in range(25):
        data = base64.b64encode(png + m.r.randbytes(m.r.randint(150, 450))).decode()
        add("base64_image", f'<img alt="chart" src="data:image/png;base64,{data}">')
    vendor_examples = [
        "Example from the AWS docs: AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "Set GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx in your shell.",
        "STRIPE_SECRET_KEY=sk_test_XXXXXXXXXXXXXXXXXXXXXXXX",
        "api_key: YOUR_API_KEY_HERE",
        "password: <your-password>",
        "token = ${GITHUB_TOKEN}",
        'password = os.environ["DB_PASSWORD"]',
        "SECRET_KEY = env('DJANGO_SECRET_KEY')",
        "client_secret: {{ vault_client_secret }}",
        'password: "********"',
        "Authorization: Bearer <token>",
        "postgres://user:<password>@localhost:5432/mydb",
        "https://username:${PASSWORD}@registry.acme.io",
        "Server=myServer;Database=myDb;User Id=myUser;Password=<password>;",
        'api_key = "REPLACE_ME"',
        "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/XXX/YYY/ZZZ",
        'password = "changeme"',
        "secret: dummy-secret-for-tests",
    ]
    for text in vendor_examples:
        add("vendor_example_or_placeholder", text)
    identifiers = [
        "def reset_password(user: User) -> None:",
        "password_hash = bcrypt.hashpw(raw, bcrypt.gensalt())",
        "self.api_key = api_key",
        "max_tokens = 4096",
        "const tokenizer = new Tokenizer({ lowercase: true });",
        "PASSWORD_MIN_LENGTH = 12",
        "secret_name = 'prod/db/credentials'",
        "token_url = 'https://oauth2.googleapis.com/token'",
        "api_key_header = 'X-API-Key'",
        "if not verify_password(candidate, stored_hash):",
        "passwordLabel: 'Password:'",
        "auth_token = request.headers.get('Authorization')",
        "private_key_path = '/etc/ssl/private/server.key'",
        "primary_key = ('tenant', 'id')",
        "keyboard_layout = 'de-nodeadkeys'",
        "with open(args.password_file) as fh: password = fh.read().strip()",
        "SECRET_KEY_FALLBACKS = []",
        "The token bucket refills at 200 tokens per second.",
        "Rotate the database password every 90 days and store it in Vault.",
        "Never paste API keys into tickets; use the secrets manager.",
        "Password: see the 1Password item 'prod-db'",
        "forgot_password_url = '/accounts/password/reset/'",
        "bypass = true",
        "compass_heading = 274",
        "jwt_secret = settings.JWT_SECRET",
        "password = getpass.getpass('Password: ')",
        "token: !vault |\n  $ANSIBLE_VAULT;1.1;AES256",
        "export GITHUB_TOKEN=$(gh auth token)",
        "credentials = service_account.Credentials.from_service_account_file(path)",
        "access_key = config['aws']['access_key']",
    ]
    for text in identifiers:
        add("code_identifier", text)
    for _ in range(40):
        choice = m.r.randint(0, 9)
        if choice == 0:
            text = f"Job finished at unix time {m.r.randint(1_600_000_000, 1_800_000_000)}."
        elif choice == 1:
            text = f"created_at_ms={m.r.randint(1_600_000_000_000, 1_800_000_000_000)}"
        elif choice == 2:
            text = f"Upgrade to version {m.r.randint(1, 9)}.{m.r.randint(0, 30)}.{m.r.randint(0, 99)} before the 2026-{m.r.randint(1, 12):02d}-{m.r.randint(1, 28):02d} freeze."
        elif choice == 3:
            text = f"The VM got address 10.{m.r.randint(0, 255)}.{m.r.randint(0, 255)}.{m.r.randint(1, 254)} from DHCP."
        elif choice == 4:
            text = f"Invoice INV-2026-{m.r.randint(0, 999999):06d} is overdue by {m.r.randint(2, 60)} days."
        elif choice == 5:
            text = f"p95 latency was {m.r.randint(100, 999)}.{m.r.randint(0, 99)} ms over {m.r.randint(1000, 99999)} requests."
        elif choice == 6:
            text = f"Order {_luhn_failing(m)} shipped from warehouse {m.r.randint(1, 40)}."
        elif choice == 7:
            text = f"Ticket #{m.r.randint(10000, 99999)} reopened; see build {m.r.randint(1000000, 9999999)}."
        elif choice == 8:
            text = f"ISBN 978-{m.r.randint(0, 9)}-{m.r.randint(100, 999)}-{m.r.randint(10000, 99999)}-{m.r.randint(0, 9)} is out of print."
        else:
            text = f"Meeting moved to {m.r.randint(1, 12)}/{m.r.randint(1, 28)}/2026 at {m.r.randint(8, 17)}:{m.r.randint(0, 59):02d}."
        add("number", text)
    for _ in range(20):
        text = iban(m, spaced=False)
        broken = text[:2] + f"{(int(text[2:4]) + m.r.randint(1, 50)) % 100:02d}" + text[4:]
        add("iban_bad_checksum", f"Account {broken} was rejected by the bank.")
    for _ in range(20):
        add("card_bad_luhn", f"Declined: card {_luhn_failing(m, prefix='4')} (checksum mismatch).")
    email_negatives = [
        "Contact alice@example.com for access.",
        "git clone git@github.com:acme/infra.git",
        "npm install @types/node@20.11.5",
        "Use the logo at assets/logo@2x.png",
        "Ping @devops-oncall in #incidents.",
        "docker pull nginx@sha256:abc123",
        "Email bob@example.org or carol@example.net.",
        "user@localhost will not receive mail",
        "git@gitlab.acme.io:platform/api.git is the upstream",
        "pip install 'requests[socks]@git+https://github.com/psf/requests'",
    ]
    for text in email_negatives:
        add("email_like", text)
    url_negatives = [
        "https://user@bitbucket.org/acme/repo.git",
        "http://localhost:8080/api/v1/health",
        "postgres://db.internal:5432/app",
        "https://acme.io/login?next=/home&lang=de",
        "ssh://git@github.com/acme/infra.git",
        "redis://cache-1.acme.io:6379/0",
        "http://[2001:db8::1]:8080/",
        "amqp://rabbit.acme.io:5672/%2F",
    ]
    for text in url_negatives:
        add("url_without_password", f"Endpoint: {text}")
    for _ in range(20):
        head = m.b64url(json.dumps({"kid": m.chars(ALNUM, 8)}).encode())
        add("jwt_like", f"cursor=eyJ{m.chars(B64URL, 30)}.{m.chars(B64URL, 20)} and {head}")
    for _ in range(40):
        text = m.pick(
            (
                f"nonce={base64.b64encode(m.r.randbytes(16)).decode()}",
                f"Build cache key: {m.chars(HEX, 64)}",
                f"ETH tx 0x{m.chars(HEX, 64)} confirmed in block {m.r.randint(10**7, 2 * 10**7)}.",
                f"Cloudflare Ray ID {m.chars(HEX, 16)}-FRA",
                f"S3 object key reports/{m.r.randint(2020, 2026)}/{uuid.UUID(int=m.r.getrandbits(128))}.parquet",
                f"The checksum {base64.b64encode(hashlib.sha1(m.r.randbytes(8)).digest()).decode()} matched.",
                f"trace: span {m.chars(HEX, 16)} parent {m.chars(HEX, 16)}",
                f"Kubernetes pod api-{m.chars(HEX, 10)}-{m.chars(string.ascii_lowercase + string.digits, 5)} restarted",
            )
        )
        add("high_entropy_non_secret", text)
    # Field-name lists, hand-typed stand-ins for keys and a cut-off token (docs/shield.md).
    cut_header = m.b64url(b'{"alg":"HS256","typ":"JWT"')
    cut_payload = m.b64url(json.dumps({"sub": m.chars(ALNUM, 10)}).encode())
    for text in (
        'REQUIRED_FIELDS = ["password", "username", "email"]',
        "columns = ('api_key', 'created_at', 'owner_id')",
        'form.add("password", "Password (12+ characters)")',
        'secret_key = "abcdef123456XYZW"',
        'api_token: "1234567890abcdefXYZ"',
        f"Cut-off token in the log: {cut_header}.{cut_payload}",
    ):
        add("field_names_and_stand_ins", text)
    prose = [
        "The staging database moved to db-2 after the incident review.",
        "Omar prefers concise answers with code first.",
        "We agreed to keep customer data in the EU region.",
        "The key insight: batching writes cut p99 latency in half.",
        "Use a secret manager instead of environment files.",
        "Tokens expire after 15 minutes; refresh tokens after 30 days.",
        "Call graph shows the password reset flow hits the mailer twice.",
        "The phone team ships the mobile release on Thursday.",
        "Her account number is on file with billing, not here.",
        "Passwords must have at least 12 characters and one symbol.",
        "Dial-in details are in the calendar invite.",
        "Keys are rotated by the platform team every quarter.",
        "Email the on-call rotation if PagerDuty is down.",
        "Revenue grew 12.5% to 4,812,330 EUR in Q3.",
        "Room 4.12 on floor 4, building 2, seats 120.",
    ]
    for text in prose:
        add("prose", text)
    while len(out) < 420:
        add(
            "prose",
            f"{m.pick(prose)} Follow-up {m.r.randint(1, 500)} noted on {m.pick(('Monday', 'Tuesday', 'Friday'))}.",
        )
    return [
        {"label": 0, "kind": None, "family": family, "text": text, "spans": []}
        for family, text in out
    ]


def _luhn_failing(m: Maker, prefix: str = "") -> str:
    while True:
        number = prefix + m.chars(string.digits, 16 - len(prefix))
        partial = number[:-1]
        if _luhn_digit(partial) != number[-1]:
            return number


def main() -> None:
    m = Maker(SEED)
    cases = positives(m) + negatives(m)
    with OUT.open("w", encoding="utf-8") as fh:
        for number, case in enumerate(cases):
            case = {"id": f"{'p' if case['label'] else 'n'}{number:04d}", **case}
            fh.write(json.dumps(case, ensure_ascii=False) + "\n")
    pos = sum(c["label"] for c in cases)
    print(f"wrote {len(cases)} cases ({pos} positive, {len(cases) - pos} negative) to {OUT}")


if __name__ == "__main__":
    main()

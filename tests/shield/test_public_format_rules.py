# ruff: noqa: E501  (labelled cases read best on one line)
"""Labelling rules for real-format values and for code that only names a password."""

from __future__ import annotations

import pytest

from cortex.shield import scan


def _kinds(text: str) -> list[str]:
    return [f.kind for f in scan(text)]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("postgresql://user:secret@localhost:5433/database", "url_password"),
        ("https://username:password@yelp.com", "url_password"),
        ("Server=host;Port=5432;User Id=username;Password=secret;Database=db;", "connection_string"),
        ("AKIAZZZZZZZZZZZZZZZZ", "aws_access_key"),
        ("aws_secret_access_key = FakeValues99cl9bqJFVA3iFUm+yqVe08HxhXFE/", "aws_secret_key"),
        ('"refresh_token": "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c3CE1ccbF66C46812d16D5B1A9Dc86A1498"', "github_token"),
        ("4839574813:AAFD39kkdpWt3ywyRZergyOLMaJhac61qc", "telegram_bot_token"),
        ("MTAyOTQ4MTN5OTU5MTDwMEcxNg.GSwJyi.sbaw8msOR3Wi6vPUzeIWy_P0vJbB0UuRVjH8l8", "discord_token"),
        ("key sk-mxIt5s1tyfCJyIKHwrqOT4BlbkFJT3VVmv6VdSwB7XXgA0bC", "openai_key"),
        ("my_password_secure = \"m{{h}o)p${e]nob(ody[finds>-_$#thisone}}\";", "generic_secret"),
        ("db_pass = m{{h}o)p${e]nob(ody[finds>-_$#thisone}}", "generic_secret"),
        ('$password = \\"goodspec\\";', "generic_secret"),
        ("//registry.npmjs.org/:_authToken=743b294a-cd03-11ec-9d64-0242ac120002", "npm_token"),
        ("buildConfigField 'String', 'API_KEY', '\"7f3kQ9zLm2Xw8RtB\"'", "generic_secret"),
        ("headers.put(\"x-api-key\", \"PMAK-6a1f3c9e2b7d4-0c8e5a\");", "generic_secret"),
        ("Provider=SQLOLEDB;User ID=ops;Password =Tr0ub4dor&3;Data Source=sql-7;", "connection_string"),
    ],
)  # fmt: skip
def test_real_format_values_are_findings(text: str, kind: str) -> None:
    assert kind in _kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        'sb.append("MasterUserPassword: " + getMasterUserPassword() + ",");',
        'usernameLabel:"Username or email:",passwordLabel:"Password:",rememberMeLabel:"Remember me:"',
        'this.addPassword = "#add-password";',
        'IAMUserChangePassword = "arn:aws:iam::aws:policy/IAMUserChangePassword"',
        "echo 'password = '.$p['config']['daemon_password'].\"\\n\";",
        "pwd = (char *) (p + ulen + 2);",
        '\\$pwd = \\$_POST[\\"password\\"];',
        "password: real_key",
        'password = ",.:-@*?!"',
        "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        'SLACK_TOKEN="xoxb-0000000000-0000000000000-xxxxxxxxxxxxxxxxxxxxxxxx"',
        "postgres://user:${DB_PASSWORD}@localhost/x",
        "password_hint = 'the name of your first pet'",
        'REQUIRED_FIELDS = ["password", "username", "email"]',
        'form.add("password", "Password (12+ characters)")',
        'secret_key = "abcdef123456XYZW"',
        "char *password = NULL;\nserver = getenv(host);",
        "user = (char *) (p + 1);\npwd = (char *) (p + ulen + 2);\nhost = h;",
    ],
)
def test_code_that_names_a_password_and_masked_tokens_are_not_findings(text: str) -> None:
    assert _kinds(text) == []

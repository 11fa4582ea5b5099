"""The demo's settings, defined once: `./run demo` and the tests take them from here.

    python -m screening.ops.demo_env VAR_DIR     # prints `export NAME=value` lines for a shell

The demo runs the production settings (DEBUG off: the site's own error pages, never Django's
debug page listing every URL; static files collected and served by WhiteNoise) on plain HTTP on
loopback, as `./run test` runs them: no HTTPS redirect, no secure-only cookies, no HSTS. The
secret key is made once and kept in VAR_DIR/secret-key (sessions and the audit draw's key last
across restarts). A variable already set in the environment (`DEBUG=1 ./run demo`) is kept.
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from pathlib import Path

PLAIN_HTTP = {
    "DEBUG": "0",
    "SECURE_SSL_REDIRECT": "0",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "SECURE_HSTS_SECONDS": "0",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "0",
}


def demo_secret_key(var_dir: Path) -> str:
    """The demo's secret key: VAR_DIR/secret-key, made (readable by its owner only) if absent."""
    path = Path(var_dir) / "secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".secret-key.{os.getpid()}")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(50) + "\n")
        partial.replace(path)
    return path.read_text().strip()


def demo_environment(var_dir: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables the demo sets: PLAIN_HTTP, the secret key and where collected static
    files go, each unless `environ` (the process's environment by default) already sets it."""
    environ = os.environ if environ is None else environ
    wanted = {
        **PLAIN_HTTP,
        "STATIC_ROOT": str(Path(var_dir).resolve() / "static"),
        "TRAINING_PRESET": "demo",  # a retraining of minutes from the Models page's button
    }
    out = {name: value for name, value in wanted.items() if not environ.get(name)}
    if not environ.get("SECRET_KEY"):
        out["SECRET_KEY"] = demo_secret_key(var_dir)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    for name, value in demo_environment(Path(argv[0])).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

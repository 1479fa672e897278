"""API teachers: a model behind an OpenAI-compatible endpoint (vLLM's or SGLang's server, a hosted API).

A teacher is written ``openai:<model>@<base_url>`` on the command line, optionally followed by
``;key=value`` settings (``openai:Qwen/QwQ-32B@http://gpu01:8000/v1;parameters_b=32.8``), or as a
mapping in the config (``{model, base_url, parameters_b, api_key_env, concurrency, max_retries,
timeout_s}``); both end up as the same canonical spec string. The API key itself never appears:
only the *name* of the environment variable that holds it (``api_key_env``).

A hosted model has no config from which to count parameters, so the protocol's size rule needs a
declared size (``parameters_b``, billions); it is recorded as declared in the manifest and report.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass

from cotgap.errors import UserError

PREFIX = "openai:"
#: The settings a spec or mapping may carry, besides ``model`` and ``base_url``.
OPTIONS = ("parameters_b", "api_key_env", "concurrency", "max_retries", "timeout_s")


@dataclass(frozen=True)
class ApiTeacher:
    model: str
    base_url: str  # the API root, e.g. http://127.0.0.1:8000/v1
    parameters_b: float | None = None  # declared size in billions (the size rule needs it)
    api_key_env: str | None = None  # NAME of the environment variable with the key (None: no key)
    concurrency: int = 8
    max_retries: int = 5
    timeout_s: int = 600

    @property
    def name(self) -> str:
        """How the teacher is named in reports and cache keys (no settings, no key)."""
        return f"{PREFIX}{self.model}@{self.base_url}"

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def spec(self) -> str:
        """The canonical spec string: name plus every non-default setting."""
        defaults = ApiTeacher(self.model, self.base_url)
        opts = [f"{k}={getattr(self, k)}" for k in OPTIONS if getattr(self, k) != getattr(defaults, k)]
        return ";".join([self.name, *opts])

    def identity(self) -> str:
        """What of this teacher decides a run's results: the endpoint's model and its declared size,
        not client settings (concurrency, retries, timeout, the key's variable)."""
        return f"{self.name};parameters_b={self.parameters_b}"

    def api_key(self) -> str:
        if not self.api_key_env:
            return ""
        key = os.environ.get(self.api_key_env)
        if not key:
            raise UserError(f"API teacher {self.name}: environment variable {self.api_key_env} (api_key_env) is not set")
        return key

    def record(self) -> dict:
        """What the manifest and report say about this teacher (never the key)."""
        return {
            "model": self.model,
            "base_url": self.base_url,
            "parameters_b": self.parameters_b,
            "size": "declared",
            "api_key_env": self.api_key_env,
            "concurrency": self.concurrency,
            "max_retries": self.max_retries,
            "timeout_s": self.timeout_s,
        }


def is_api_spec(spec) -> bool:
    return isinstance(spec, dict) or (isinstance(spec, str) and spec.startswith(PREFIX))


def _typed(name: str, key: str, value):
    kind = {"parameters_b": float, "concurrency": int, "max_retries": int, "timeout_s": int}.get(key)
    if kind is None:  # api_key_env
        if not isinstance(value, str) or not value.replace("_", "").isalnum():
            raise UserError(f"API teacher {name}: {key} must be the name of an environment variable, got {value!r}")
        return value
    try:
        v = kind(value)
    except (TypeError, ValueError):
        raise UserError(f"API teacher {name}: {key} must be a number, got {value!r}") from None
    if v <= 0 or (kind is int and isinstance(value, float) and not float(value).is_integer()):
        raise UserError(f"API teacher {name}: {key} must be a positive {kind.__name__}, got {value!r}")
    return v


def _build(model, base_url, options: dict, where: str) -> ApiTeacher:
    if not isinstance(model, str) or not model:
        raise UserError(f"API teacher {where}: 'model' must be a model name")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise UserError(f"API teacher {where}: base_url must start with http:// or https://, got {base_url!r}")
    base_url = base_url.rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        base_url = base_url.removesuffix(suffix)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UserError(
            f"API teacher {where}: unknown setting(s) {', '.join(unknown)} (known: model, base_url, {', '.join(OPTIONS)})"
        )
    name = f"{PREFIX}{model}@{base_url}"
    return ApiTeacher(model, base_url, **{k: _typed(name, k, v) for k, v in options.items()})


def parse(spec) -> ApiTeacher:
    """An ``ApiTeacher`` from a spec string or a config mapping; bad input is a ``UserError``."""
    if isinstance(spec, dict):
        data = dict(spec)
        if "api_key" in data:
            raise UserError(
                "API teacher: put the key in an environment variable and name it with api_key_env; "
                "a key never goes into a config file"
            )
        return _build(data.pop("model", None), data.pop("base_url", None), data, repr(spec.get("model")))
    head, *opts = spec[len(PREFIX) :].split(";")
    model, sep, base_url = head.partition("@")
    if not sep:
        raise UserError(f"API teacher {spec!r}: write it as openai:<model>@<base_url>[;parameters_b=N]")
    options = {}
    for o in opts:
        k, eq, v = o.partition("=")
        if not eq:
            raise UserError(f"API teacher {spec!r}: setting {o!r} is not key=value")
        options[k.strip()] = v.strip()
    return _build(model, base_url, options, spec)


def require_declared_size(api: ApiTeacher) -> float:
    if api.parameters_b is None:
        raise UserError(
            f"API teacher {api.name} has no declared size, which the protocol's size rule needs: add "
            f"parameters_b (billions), e.g. --teacher '{api.name};parameters_b=72' or in the config "
            f"teachers: [{{model: {api.model}, base_url: {api.base_url}, parameters_b: 72}}]"
        )
    return api.parameters_b


def check_reachable(api: ApiTeacher, timeout: float = 10.0) -> None:
    """Ask the server for its models (``GET /models``) before any work: an unreachable URL, a
    rejected key or a model the server does not serve is refused now, in one line."""
    req = urllib.request.Request(f"{api.base_url}/models", headers={"Authorization": f"Bearer {api.api_key()}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise UserError(f"API teacher {api.name}: the server refused the key (HTTP {exc.code})") from None
        if exc.code == 404:  # some gateways do not list models: the first request will tell
            return
        raise UserError(f"API teacher {api.name}: GET {api.base_url}/models answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"API teacher {api.name}: cannot reach {api.base_url} ({reason})") from None
    served = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]
    if served and api.model not in served:
        raise UserError(f"API teacher {api.name}: the server does not serve {api.model!r} (it serves: {', '.join(served)})")

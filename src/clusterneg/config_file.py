"""``--config FILE``: a YAML file of command options, overridden by the command line.

Keys are the command's option names (``lr``, ``n_clusters`` or ``n-clusters``, ``option``
as a list of ``KEY=VALUE``). Every run saves the options it resolved as ``command.yaml``, so
``clusterneg train --config RUN/command.yaml`` replays it (spaCy's config-plus-overrides,
STYLE.md).

Example:
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
    >>> _ = f.write_text("lr: 0.01\\nn-clusters: 8\\n")
    >>> read_config(f, {"lr": 0.002, "n_clusters": "auto"})
    {'lr': 0.01, 'n_clusters': '8'}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clusterneg.errors import DataError

COMMAND_FILE = "command.yaml"


def read_config(path: str | Path, defaults: dict[str, Any]) -> dict[str, Any]:
    """The options in ``path`` (names normalised to snake_case), checked against ``defaults``.

    Raises:
        DataError: unreadable YAML, not a mapping, an unknown key, or a value whose type does
            not match the option's.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read config file: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise DataError(path, f"invalid YAML: {getattr(exc, 'problem', exc)}", line=line) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DataError(path, f"expected a mapping of option: value, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key not in defaults:
            raise DataError(path, f"unknown option; expected some of "
                                  f"{', '.join(sorted(defaults))}", field=str(raw_key))
        out[key] = _coerce(path, str(raw_key), value, defaults[key])
    return out


def _coerce(path: Path, key: str, value: Any, default: Any) -> Any:
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise DataError(path, f"expected true or false, got {value!r}", field=key)
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(path, f"expected a number, got {value!r}", field=key)
        if isinstance(default, int) and not float(value).is_integer():
            raise DataError(path, f"expected an integer, got {value!r}", field=key)
        return type(default)(value)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, list):
            raise DataError(path, f"expected a list, got {value!r}", field=key)
        return [str(v) for v in value]
    if isinstance(value, (dict, list)):
        raise DataError(path, f"expected a single value, got {value!r}", field=key)
    if isinstance(default, Path):
        return Path(str(value))
    return str(value) if isinstance(default, str) else value


def merge(ctx: Any, config: Path | None, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (the command's parameters) with the config file's values for every option
    not set on the command line."""
    if config is None:
        return dict(given)
    from_file = read_config(config, given)
    out = dict(given)
    for key, value in from_file.items():
        source = ctx.get_parameter_source(key)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            out[key] = value
    return out


def dump_command(options: dict[str, Any]) -> str:
    """The options as YAML that :func:`read_config` reads back."""
    import yaml

    plain = {k.replace("_", "-"): (str(v) if isinstance(v, Path) else v)
             for k, v in options.items() if k not in ("config", "ctx")}
    return yaml.safe_dump(plain, sort_keys=False)

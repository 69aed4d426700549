"""Profiles: where the CLI keeps credentials, and how flags, env and files combine."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

DEFAULT_PROFILE = "default"


def config_dir() -> Path:
    """``$FABRIC_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/fabric``, else ``~/.config/fabric``."""
    explicit = os.environ.get("FABRIC_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "fabric"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_all() -> Dict[str, Dict[str, Any]]:
    path = credentials_path()
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def save_all(profiles: Dict[str, Dict[str, Any]]) -> None:
    """Write every profile to the credentials file, readable by its owner only (0600)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(profiles, handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def session_values(auth: Any) -> Dict[str, Optional[str]]:
    """What a profile keeps of a login or refresh answer (``AuthResponse``)."""
    expires_in = float(auth.get("expires_in") or 0)
    return {
        "api_key": None,
        "access_token": auth.get("access_token"),
        "refresh_token": auth.get("refresh_token"),
        "access_expires_at": str(time.time() + expires_in) if expires_in else None,
    }


def update_profile(name: str, **values: Optional[str]) -> None:
    profiles = load_all()
    entry = profiles.setdefault(name, {})
    for key, value in values.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    save_all(profiles)


def remove_profile(name: str) -> bool:
    profiles = load_all()
    if profiles.pop(name, None) is None:
        return False
    save_all(profiles)
    return True


@dataclass
class Settings:
    """The resolved connection settings: flags, then env, then the profile file."""

    profile: str
    base_url: Optional[str]
    api_key: Optional[str]
    organization_id: Optional[str]
    refresh_token: Optional[str] = None


def resolve(
    profile: Optional[str],
    base_url: Optional[str],
    api_key: Optional[str],
    organization_id: Optional[str],
) -> Settings:
    name = profile or os.environ.get("FABRIC_PROFILE") or DEFAULT_PROFILE
    stored = load_all().get(name, {})
    key = api_key or os.environ.get("FABRIC_API_KEY") or stored.get("api_key")
    # A stored login session's access token is used until shortly before it expires; then
    # the refresh token (single-use) is traded for a new pair when the client is made.
    fresh = float(stored.get("access_expires_at") or 0) > time.time() + 30
    refresh = None if key or fresh else stored.get("refresh_token")
    return Settings(
        profile=name,
        base_url=base_url or os.environ.get("FABRIC_BASE_URL") or stored.get("base_url"),
        api_key=key or (None if refresh else stored.get("access_token")),
        refresh_token=refresh,
        organization_id=organization_id
        or os.environ.get("FABRIC_ORGANIZATION_ID")
        or stored.get("organization_id"),
    )

"""Builds the galleries domain."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_server.assembly import Assembled, Platform
from fabric_server.auth.platform import PlatformAdmins
from fabric_server.galleries.service import GalleryService


@dataclass(kw_only=True)
class Galleries(Assembled):
    service: GalleryService


def assemble(platform: Platform, platform_admins: PlatformAdmins) -> Galleries:
    return Galleries(service=GalleryService(platform.access, platform_admins))

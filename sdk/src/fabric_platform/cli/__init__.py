"""The ``fabric`` command line over `FabricClient` (install with ``fabric-platform[cli]``).

Never imported by ``import fabric_platform``: the SDK itself needs only httpx.
"""

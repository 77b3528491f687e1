"""A local stand-in for the parts of Auth0 the runner uses, on loopback only (README, "The stand-in tenant")."""

from .server import Sandbox
from .sizes import Sizes
from .tenant import SandboxApp

__all__ = ["Sandbox", "SandboxApp", "Sizes"]

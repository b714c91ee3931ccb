"""Who is calling: a customer (the tenant's own admin token) or one of its agents."""

from dataclasses import dataclass, field, replace

PERMISSION_AGENT = 16
PERMISSION_ADMIN = 32
PERMISSION_MANAGER = 64


@dataclass(frozen=True)
class Principal:
    customer_id: str
    agent_id: str | None = None  # None for a customer token
    name: str = ""
    permission: int = 0
    # The token's exp (epoch seconds): a websocket connection lives no longer.
    expires_at: int | None = field(default=None, compare=False)

    @property
    def is_agent(self) -> bool:
        return self.agent_id is not None

    @property
    def is_privileged(self) -> bool:
        """Customer tokens, admins and managers may do everything in their customer."""
        return not self.is_agent or bool(self.permission & (PERMISSION_ADMIN | PERMISSION_MANAGER))

    @property
    def caller_id(self) -> str:
        """Scope of per-caller state such as idempotency keys."""
        return self.agent_id or f"customer-{self.customer_id}"

    def without_privileges(self) -> "Principal":
        """The same agent with plain rights: the service_agents routes act on
        the caller's own chatrooms only, whatever their permission bits."""
        return replace(self, permission=self.permission & ~(PERMISSION_ADMIN | PERMISSION_MANAGER))

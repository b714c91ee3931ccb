"""Authorization rules of CONTRACT.md. Tenancy is enforced by the keys
(another customer's id is never found); these decide 403 inside a tenant."""

from chalicelib.auth import Principal
from chalicelib.errors import Forbidden


def require_agent(principal: Principal, action: str) -> str:
    if not principal.is_agent:
        raise Forbidden(f"{action} needs an agent token (a customer token has no agent to act as)")
    return principal.agent_id


def require_participant(principal: Principal, chat) -> None:
    if not principal.is_privileged and principal.agent_id not in chat.participant_ids:
        raise Forbidden(f"only participants of chat {chat.id} may do this")


def require_chat_owner(principal: Principal, chat) -> None:
    if not principal.is_privileged and principal.agent_id != chat.owner_id:
        raise Forbidden(f"only the owner of chat {chat.id}, an admin or a manager may change it")


def require_own(principal: Principal, owner_id: str, what: str) -> None:
    if not principal.is_privileged and principal.agent_id != owner_id:
        raise Forbidden(f"{what} belongs to another agent")


def require_privileged(principal: Principal, hint: str) -> None:
    if not principal.is_privileged:
        raise Forbidden(hint)

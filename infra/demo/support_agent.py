"""The demo's agent: a small customer-support agent built with langchain-core.

The chat model is scripted (langchain-core's GenericFakeChatModel), so the demo runs offline and gives the same story
every time, but everything around it is real langchain-core machinery: tool calling, tool errors, callbacks. The
refund gateway fails once with a timeout and the agent retries it, so the recorded evidence holds an ERROR event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool

ORDER_ID = "ORD-1042"
CUSTOMER_EMAIL = "dana.reyes@example.com"
REFUND_AMOUNT = 49.99


class PaymentGatewayTimeoutError(RuntimeError):
    """The (simulated) payment gateway did not answer in time."""


class _RefundGateway:
    """Fails the first refund attempt, as real gateways sometimes do."""

    def __init__(self) -> None:
        self.attempts = 0

    def refund(self, order_id: str, amount: float) -> dict[str, Any]:
        self.attempts += 1
        if self.attempts == 1:
            raise PaymentGatewayTimeoutError("payment gateway timed out after 10s")
        return {"order_id": order_id, "amount": amount, "refund_id": "RF-77310", "status": "issued"}


def build_tools() -> list[BaseTool]:
    gateway = _RefundGateway()

    @tool
    def lookup_order(order_id: str) -> dict[str, Any]:
        """Look up an order by id."""
        return {
            "order_id": order_id,
            "item": "Noise-cancelling headphones",
            "price": REFUND_AMOUNT,
            "status": "delivered",
            "customer_email": CUSTOMER_EMAIL,
        }

    @tool
    def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
        """Refund an order through the payment gateway."""
        return gateway.refund(order_id, amount)

    @tool
    def send_email(to: str, subject: str, body: str) -> dict[str, Any]:
        """Send an email to the customer."""
        return {"to": to, "subject": subject, "message_id": "MSG-5512", "queued": True}

    return [lookup_order, issue_refund, send_email]


def _tool_call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


def scripted_model() -> GenericFakeChatModel:
    """The model's side of the conversation, in order."""
    refund_args = {"order_id": ORDER_ID, "amount": REFUND_AMOUNT}
    return GenericFakeChatModel(
        messages=iter(
            [
                _tool_call("lookup_order", {"order_id": ORDER_ID}, "call-1"),
                _tool_call("issue_refund", refund_args, "call-2"),
                _tool_call("issue_refund", refund_args, "call-3"),
                _tool_call(
                    "send_email",
                    {
                        "to": CUSTOMER_EMAIL,
                        "subject": f"Your refund for {ORDER_ID}",
                        "body": f"We have refunded {REFUND_AMOUNT} USD for order {ORDER_ID}.",
                    },
                    "call-4",
                ),
                AIMessage(content=f"Refund RF-77310 issued for {ORDER_ID} and the customer was notified."),
            ]
        )
    )


def run_support_agent(callbacks: Sequence[BaseCallbackHandler], max_steps: int = 10) -> str:
    """Handle one support ticket; returns the agent's final answer."""
    tools = {t.name: t for t in build_tools()}
    model = scripted_model()
    config = RunnableConfig(callbacks=list(callbacks))
    messages: list[BaseMessage] = [
        SystemMessage(content="You are a customer-support agent. Use the tools to resolve the ticket."),
        HumanMessage(content=f"My headphones from order {ORDER_ID} arrived broken. Please refund me."),
    ]
    for _ in range(max_steps):
        reply = model.invoke(messages, config=config)
        messages.append(reply)
        if not isinstance(reply, AIMessage) or not reply.tool_calls:
            return str(reply.content)
        for call in reply.tool_calls:
            try:
                result = tools[call["name"]].invoke(call["args"], config=config)
                content = str(result)
            except PaymentGatewayTimeoutError as exc:
                content = f"error: {exc}; retry the call"
            messages.append(ToolMessage(content=content, tool_call_id=call["id"] or call["name"]))
    raise RuntimeError("the agent did not finish within its step budget")

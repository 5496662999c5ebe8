"""WeCom payloads as typed models at the edge (unknown fields ignored), and `Inbound`.

`Inbound` is what every WeCom surface turns a person's message or click into before the
bot decides anything; `Outcome` is the bot's answer to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from handlers.message import Card, Reply


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# -- the AI bot (websocket frames, and the decrypted JSON of HTTP mode) ----------------------


class AibotFrom(Model):
    userid: str = ""
    corpid: str = ""


class AibotText(Model):
    content: str = ""


class AibotMixedItem(Model):
    msgtype: str = ""
    text: AibotText | None = None


class AibotMixed(Model):
    msg_item: list[AibotMixedItem] = []


class AibotCardEvent(Model):
    card_type: str = ""
    event_key: str = ""
    task_id: str = ""


class AibotEvent(Model):
    eventtype: str = ""
    template_card_event: AibotCardEvent | None = None


class AibotBody(Model):
    """The body of `aibot_msg_callback` / `aibot_event_callback` (docs 100719, 101027)."""

    msgid: str = ""
    aibotid: str = ""
    chatid: str = ""
    chattype: str = "single"
    sender: AibotFrom = Field(default_factory=AibotFrom, alias="from")
    response_url: str = ""
    msgtype: str = ""
    text: AibotText | None = None
    mixed: AibotMixed | None = None
    event: AibotEvent | None = None

    @property
    def content(self) -> str:
        if self.text is not None:
            return self.text.content
        if self.mixed is not None:
            return " ".join(i.text.content for i in self.mixed.msg_item if i.text is not None)
        return ""

    @property
    def card_event(self) -> AibotCardEvent | None:
        if self.event is None or self.event.eventtype != "template_card_event":
            return None
        return self.event.template_card_event

    @property
    def conversation(self) -> str:
        """Where an answer goes: the group's chatid, or the person for a single chat."""
        return self.chatid if self.chattype == "group" and self.chatid else self.sender.userid


class AibotFrame(Model):
    cmd: str = ""
    headers: dict[str, Any] = {}
    body: dict[str, Any] | None = None
    errcode: int | None = None
    errmsg: str = ""

    @property
    def req_id(self) -> str:
        return str(self.headers.get("req_id", ""))


# -- the self-built app (decrypted callback XML, doc 90239/90240) -----------------------------


class AppMessage(Model):
    to_user: str = Field("", alias="ToUserName")
    from_user: str = Field("", alias="FromUserName")
    create_time: str = Field("", alias="CreateTime")
    msg_type: str = Field("", alias="MsgType")
    content: str = Field("", alias="Content")
    msg_id: str = Field("", alias="MsgId")
    agent_id: str = Field("", alias="AgentID")
    event: str = Field("", alias="Event")
    event_key: str = Field("", alias="EventKey")
    task_id: str = Field("", alias="TaskId")
    card_type: str = Field("", alias="CardType")
    response_code: str = Field("", alias="ResponseCode")

    @property
    def dedup(self) -> str:
        """WeCom retries a callback up to three times: MsgId for messages, sender + time for events."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"event:{self.from_user}:{self.create_time}:{self.event}:{self.task_id}:{self.event_key}"


# -- what the bot sees ------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    """A person's message or click on one WeCom surface, verified and parsed."""

    channel: str
    user: str
    dedup: str
    conversation: str = ""
    group_id: str = ""
    # "single" for a one-to-one chat with the bot (every app callback), "group" in a group.
    chattype: str = ""
    text: str = ""
    key: str = ""
    task_id: str = ""
    response_code: str = ""
    response_url: str = ""

    def to_json(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inbound:
        return cls(**{k: str(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Outcome:
    """The bot's answer: the reply, and for a click the case's card as it is now."""

    reply: Reply
    card: Card | None = None
    changed: bool = False

    @property
    def tell(self) -> bool:
        """Whether a click also needs words: a refusal, someone to @, or nothing visibly changed."""
        return not self.reply.ok or bool(self.reply.mentions) or not self.changed

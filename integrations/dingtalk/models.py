"""DingTalk's wire shapes: what arrives (unknown fields ignored) and what we send (exact).

Inbound: robot @-messages, card clicks, stream frames, open-API answers. Outbound: the
card, robot-message and stream-ack bodies, serialised with `dump()` under DingTalk's names.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from handlers.payload import loads

ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"


class Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


# -- inbound --------------------------------------------------------------------------------


class TextContent(Inbound):
    content: str = ""


class RobotMessage(Inbound):
    """An @-message to the app robot (the HTTP body, or a stream frame's `data`)."""

    msgtype: str = Field(min_length=1)
    text: TextContent | None = None
    content: dict[str, Any] | None = None
    msg_id: str = Field(alias="msgId", min_length=1)
    create_at: int = Field(default=0, alias="createAt")
    conversation_type: Literal["1", "2"] = Field(alias="conversationType")
    conversation_id: str = Field(alias="conversationId", min_length=1)
    conversation_title: str = Field(default="", alias="conversationTitle")
    sender_id: str = Field(default="", alias="senderId")
    sender_nick: str = Field(default="", alias="senderNick")
    sender_staff_id: str = Field(default="", alias="senderStaffId")
    sender_corp_id: str = Field(default="", alias="senderCorpId")
    chatbot_corp_id: str = Field(default="", alias="chatbotCorpId")
    robot_code: str = Field(default="", alias="robotCode")
    is_in_at_list: bool = Field(default=False, alias="isInAtList")
    session_webhook: str = Field(default="", alias="sessionWebhook")
    session_webhook_expired_time: int = Field(default=0, alias="sessionWebhookExpiredTime")

    @property
    def is_group(self) -> bool:
        return self.conversation_type == "2"

    @property
    def command_text(self) -> str:
        """The typed text without the leading space DingTalk leaves where the @bot was."""
        if self.text is not None:
            return self.text.content.strip()
        parts = (self.content or {}).get("richText", [])
        if not isinstance(parts, list):
            return ""
        return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict)).strip()


class CardPrivateData(Inbound):
    action_ids: list[str] = Field(default_factory=list, alias="actionIds")
    params: dict[str, Any] = Field(default_factory=dict)


class CardCallbackContent(Inbound):
    card_private_data: CardPrivateData = Field(
        default_factory=CardPrivateData, alias="cardPrivateData"
    )


class CardCallback(Inbound):
    """A tap on a card button; `content` arrives as a JSON string."""

    type: str = "actionCallback"
    out_track_id: str = Field(alias="outTrackId", min_length=1)
    corp_id: str = Field(default="", alias="corpId")
    user_id: str = Field(alias="userId", min_length=1)
    space_type: str = Field(default="", alias="spaceType")
    space_id: str = Field(default="", alias="spaceId")
    content: CardCallbackContent = Field(default_factory=CardCallbackContent)

    @field_validator("content", mode="before")
    @classmethod
    def _decode(cls, value: Any) -> Any:
        # payload.loads: a PayloadError (a ValueError) for deep nesting, never RecursionError.
        return loads(value) if isinstance(value, str) else value

    @property
    def action(self) -> str:
        data = self.content.card_private_data
        action = data.params.get("action") or next(iter(data.action_ids), "")
        return str(action)

    @property
    def case_ref(self) -> str:
        return str(self.content.card_private_data.params.get("case", ""))

    @property
    def card_version(self) -> int | None:
        """The `version` param of the tapped card (cards from older templates send none)."""
        value = self.content.card_private_data.params.get("version")
        if value is None or value == "":
            return None
        try:
            return max(0, int(str(value)))
        except ValueError:
            return 0


class StreamHeaders(Inbound):
    topic: str = ""
    message_id: str = Field(default="", alias="messageId")
    content_type: str = Field(default="application/json", alias="contentType")
    time: str = ""


class StreamFrame(Inbound):
    spec_version: str = Field(default="1.0", alias="specVersion")
    type: str
    headers: StreamHeaders = Field(default_factory=StreamHeaders)
    data: str = ""


class Connection(Inbound):
    endpoint: str = Field(min_length=1)
    ticket: str = Field(min_length=1)


class AccessToken(Inbound):
    access_token: str = Field(alias="accessToken", min_length=1)
    expire_in: int = Field(default=7200, alias="expireIn")


class DeliverResult(Inbound):
    space_type: str = Field(default="", alias="spaceType")
    space_id: str = Field(default="", alias="spaceId")
    success: bool = False
    error_msg: str = Field(default="", alias="errorMsg")


class CreateAndDeliverResult(Inbound):
    out_track_id: str = Field(default="", alias="outTrackId")
    deliver_results: list[DeliverResult] = Field(default_factory=list, alias="deliverResults")


class CreateAndDeliverAnswer(Inbound):
    success: bool = False
    result: CreateAndDeliverResult = Field(default_factory=CreateAndDeliverResult)


# -- outbound -------------------------------------------------------------------------------


class Subscription(Outbound):
    type: Literal["CALLBACK", "EVENT"] = "CALLBACK"
    topic: str


class OpenConnection(Outbound):
    client_id: str = Field(alias="clientId")
    client_secret: str = Field(alias="clientSecret")
    subscriptions: list[Subscription]
    ua: str
    local_ip: str = Field(default="", alias="localIp")


class StreamAckHeaders(Outbound):
    message_id: str = Field(alias="messageId")
    content_type: str = Field(default="application/json", alias="contentType")


class StreamAck(Outbound):
    code: int = 200
    headers: StreamAckHeaders
    message: str = "OK"
    data: str


class CardData(Outbound):
    card_param_map: dict[str, str] = Field(alias="cardParamMap")


class CardUpdateOptions(Outbound):
    update_card_data_by_key: bool = Field(default=True, alias="updateCardDataByKey")


class GroupSpaceModel(Outbound):
    support_forward: bool = Field(default=False, alias="supportForward")


class GroupDeliverModel(Outbound):
    robot_code: str = Field(alias="robotCode")
    at_user_ids: dict[str, str] | None = Field(default=None, alias="atUserIds")


class CreateAndDeliver(Outbound):
    card_template_id: str = Field(alias="cardTemplateId")
    out_track_id: str = Field(alias="outTrackId")
    callback_type: Literal["STREAM", "HTTP"] = Field(alias="callbackType")
    callback_route_key: str | None = Field(default=None, alias="callbackRouteKey")
    card_data: CardData = Field(alias="cardData")
    open_space_id: str = Field(alias="openSpaceId")
    im_group_open_space_model: GroupSpaceModel = Field(
        default_factory=GroupSpaceModel, alias="imGroupOpenSpaceModel"
    )
    im_group_open_deliver_model: GroupDeliverModel = Field(alias="imGroupOpenDeliverModel")
    user_id_type: int = Field(default=1, alias="userIdType")


class UpdateCard(Outbound):
    out_track_id: str = Field(alias="outTrackId")
    card_data: CardData = Field(alias="cardData")
    card_update_options: CardUpdateOptions = Field(
        default_factory=CardUpdateOptions, alias="cardUpdateOptions"
    )


class CardCallbackAnswer(Outbound):
    """What a card callback answers to update the card in place for everyone."""

    card_update_options: CardUpdateOptions = Field(
        default_factory=CardUpdateOptions, alias="cardUpdateOptions"
    )
    card_data: CardData = Field(alias="cardData")


class RegisterCallback(Outbound):
    callback_route_key: str = Field(alias="callbackRouteKey")
    callback_url: str = Field(alias="callbackUrl")
    api_secret: str = Field(alias="apiSecret")
    force_update: bool = Field(default=True, alias="forceUpdate")


class GroupMessage(Outbound):
    robot_code: str = Field(alias="robotCode")
    open_conversation_id: str = Field(alias="openConversationId")
    msg_key: str = Field(alias="msgKey")
    msg_param: str = Field(alias="msgParam")


class UserMessage(Outbound):
    robot_code: str = Field(alias="robotCode")
    user_ids: list[str] = Field(alias="userIds", min_length=1)
    msg_key: str = Field(alias="msgKey")
    msg_param: str = Field(alias="msgParam")


class At(Outbound):
    at_user_ids: list[str] = Field(default_factory=list, alias="atUserIds")
    at_mobiles: list[str] = Field(default_factory=list, alias="atMobiles")
    is_at_all: bool = Field(default=False, alias="isAtAll")


class Text(Outbound):
    content: str


class Markdown(Outbound):
    title: str
    text: str


class RobotSend(Outbound):
    """A robot message body: session webhook replies and custom robot sends."""

    msgtype: Literal["text", "markdown"]
    text: Text | None = None
    markdown: Markdown | None = None
    at: At = Field(default_factory=At)


class WorkNoticeMessage(Outbound):
    msgtype: Literal["text"] = "text"
    text: Text


class WorkNotice(Outbound):
    """A work notification (工作通知, `topapi/message/corpconversation/asyncsend_v2`): the app
    tells people one by one, in their 工作通知 chat, what a robot group message cannot @ them for."""

    agent_id: int = Field(gt=0)
    userid_list: str = Field(min_length=1)
    msg: WorkNoticeMessage


class WorkNoticeAnswer(Inbound):
    errcode: int = -1
    errmsg: str = ""
    task_id: int = 0

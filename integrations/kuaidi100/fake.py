"""FakeKuaidi100: the form posts 快递100 sends to a subscriber's callbackurl, for tests —
`param` (the push JSON, full history newest first) and `sign`, exactly as the vendor sends them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from integrations.kuaidi100.models import CHINA
from integrations.kuaidi100.signing import sign

STATE_NAMES = {
    "0": "在途",
    "1": "揽收",
    "2": "疑难",
    "3": "签收",
    "4": "退签",
    "5": "派件",
    "14": "拒签",
}


@dataclass
class FakeKuaidi100:
    salt: str = "kuaidi100-salt"

    def param(
        self,
        com: str,
        nu: str,
        state: str,
        scans: list[tuple[datetime, str, str]],
        *,
        status: str = "polling",
    ) -> str:
        """The push JSON; `scans` are (time, state, context), any order."""
        ordered = sorted(scans, key=lambda s: s[0], reverse=True)
        data = [
            {
                "context": context,
                "time": f"{at.astimezone(CHINA):%Y-%m-%d %H:%M:%S}",
                "ftime": f"{at.astimezone(CHINA):%Y-%m-%d %H:%M:%S}",
                "status": STATE_NAMES.get(scan_state, "在途"),
                "areaCode": None,
                "areaName": None,
            }
            for at, scan_state, context in ordered
        ]
        return json.dumps(
            {
                "status": "shutdown" if state == "3" else status,
                "billstatus": "got",
                "message": "",
                "autoCheck": "0",
                "comOld": "",
                "comNew": "",
                "lastResult": {
                    "message": "ok",
                    "state": state,
                    "status": "200",
                    "condition": "F00",
                    "ischeck": "1" if state == "3" else "0",
                    "com": com,
                    "nu": nu,
                    "data": data,
                },
            },
            ensure_ascii=False,
        )

    def form(
        self,
        com: str,
        nu: str,
        state: str,
        scans: list[tuple[datetime, str, str]],
        *,
        status: str = "polling",
    ) -> dict[str, str]:
        param = self.param(com, nu, state, scans, status=status)
        return {"param": param, "sign": sign(param, self.salt)}

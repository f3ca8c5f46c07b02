"""A code's landing URL must be one a customer's phone can open when the service talks to real WeCom."""

from __future__ import annotations

from bot.stores.api_codes import _landing_unreachable_by_customers


def test_loopback_landing_url_with_real_wecom_is_refused(make_settings):
    real = make_settings(wecom_api_base_url="https://qyapi.weixin.qq.com/cgi-bin/",
                         public_base_url="http://127.0.0.1:8080")
    assert _landing_unreachable_by_customers(real)
    public = make_settings(wecom_api_base_url="https://qyapi.weixin.qq.com/cgi-bin/",
                           public_base_url="https://guide.example.com")
    assert not _landing_unreachable_by_customers(public)
    emulated = make_settings(public_base_url="http://127.0.0.1:8080")  # the tests' emulator on loopback
    assert not _landing_unreachable_by_customers(emulated)


async def test_creating_a_code_answers_409_and_writes_nothing(seeded, monkeypatch):
    settings = seeded.world.services.settings
    monkeypatch.setattr(settings, "wecom_api_base_url", "https://qyapi.weixin.qq.com/cgi-bin/")
    monkeypatch.setattr(settings, "public_base_url", "http://localhost:8080")
    response = await seeded.client.post("/api/v1/qrcodes", headers=seeded.auth["hq"],
                                        json={"channel_code": "CH1", "fallback": {"store_code": "S1"}})
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "public_base_url_loopback"
    listed = await (await seeded.client.get("/api/v1/qrcodes", headers=seeded.auth["hq"])).json()
    assert len(listed["qrcodes"]) == 1  # only the seeded code

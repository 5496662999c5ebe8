"""DingTalk: the app robot (Stream and HTTP mode, interactive cards) and the custom robot webhook."""

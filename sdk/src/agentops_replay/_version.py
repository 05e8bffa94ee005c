"""The SDK's version, as it appears in every event's ``source_sdk_ver`` (ELS section 1)."""

VERSION = "0.1.0"
SOURCE_SDK_VER = f"agentops-replay-python/{VERSION}"

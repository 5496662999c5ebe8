"""What tests share: settings builders and the app driver, the databases, fakes on port 0,
`refundops` subprocesses, and each platform's test keys and settings."""

"""deltasync: keeps ELIZA in step with Microsoft Entra ID through Graph delta queries."""

__version__ = "0.1.0"

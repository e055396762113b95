from neve.airflow.hooks.neve import NeveHook

__all__ = ["NeveHook"]

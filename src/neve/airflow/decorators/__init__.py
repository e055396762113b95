from neve.airflow.decorators.neve import neve_task

__all__ = ["neve_task"]

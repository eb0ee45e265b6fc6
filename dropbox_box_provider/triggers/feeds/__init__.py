"""The shared-stream producers of the change triggers: they read the Dropbox and Box feeds in the triggerer.

A DAG file never loads them (nor Airflow's ``airflow.triggers.shared_stream``): a trigger imports its
producer in ``ChangeTrigger.producer_class``, called when the triggerer starts the shared stream.
"""

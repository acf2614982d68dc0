"""CloudWatch: alarms, composite alarms, dashboards and their quotas."""

"""CloudWatch rules a deploy meets: metrics per alarm, composite rules, the alarm topic's KMS key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.local.provisioning import provision_text


def _errors_alarm(logical: str, metrics: int) -> str:
    queries = "".join(
        f"""
        - Id: m{number}
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: AWS/Lambda
              MetricName: Errors
              Dimensions: [{{Name: FunctionName, Value: f{number}}}]
            Period: 300
            Stat: Sum"""
        for number in range(metrics)
    )
    ids = ", ".join(f"m{number}" for number in range(metrics))
    return f"""
  {logical}:
    Type: AWS::CloudWatch::Alarm
    Properties:
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      Metrics:
        - Id: total
          Expression: SUM([{ids}])
          ReturnData: true{queries}
"""


def test_an_alarm_over_cloudwatchs_metric_limit_stops_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 9 metrics and the expression make 10 queries: accepted. One more is what rolled the stack back.
    fits = provision_text(tmp_path, monkeypatch, "Resources:" + _errors_alarm("Fits", 9), "fits")
    assert "Fits" in fits.physical
    with pytest.raises(ValueError, match=r"Over: CloudWatch takes at most 10 metrics per alarm"):
        provision_text(tmp_path, monkeypatch, "Resources:" + _errors_alarm("Over", 10), "over")


def test_a_composite_alarm_must_name_alarms_that_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    composite = """
  Any:
    Type: AWS::CloudWatch::CompositeAlarm
    Properties:
      AlarmRule: !Sub "ALARM(${Fits}) OR ALARM(gone-alarm)"
"""
    with pytest.raises(ValueError, match=r"Any: AlarmRule names alarms that do not exist: gone-alarm"):
        provision_text(tmp_path, monkeypatch, "Resources:" + _errors_alarm("Fits", 2) + composite, "gone")


ALARM_TO_TOPIC = """
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{AWS: !Sub "arn:aws:iam::${{AWS::AccountId}}:root"}}
            Action: kms:*
            Resource: "*"
{cloudwatch_statement}
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      KmsMasterKeyId: {key}
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Statistic: Maximum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      AlarmActions: [!Ref Topic]
"""
CLOUDWATCH_MAY_USE_THE_KEY = """
          - Effect: Allow
            Principal: {Service: cloudwatch.amazonaws.com}
            Action: [kms:Decrypt, kms:GenerateDataKey*]
            Resource: "*"
"""


@pytest.mark.parametrize(
    ("key", "cloudwatch_statement"),
    [("alias/aws/sns", ""), ("!Ref Key", "")],
    ids=["aws-managed-key", "key-policy-without-cloudwatch"],
)
def test_alarms_cannot_notify_a_topic_whose_key_cloudwatch_cannot_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, cloudwatch_statement: str
) -> None:
    text = ALARM_TO_TOPIC.format(key=key, cloudwatch_statement=cloudwatch_statement)
    with pytest.raises(ValueError, match=r"Alarm: notifies .* dropped silently"):
        provision_text(tmp_path, monkeypatch, text, "dropped")


def test_alarms_notify_a_topic_whose_key_policy_lets_cloudwatch_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = ALARM_TO_TOPIC.format(key="!Ref Key", cloudwatch_statement=CLOUDWATCH_MAY_USE_THE_KEY)
    stack = provision_text(tmp_path, monkeypatch, text, "delivered")
    assert "Alarm" in stack.physical

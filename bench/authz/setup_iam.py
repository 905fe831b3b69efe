#!/usr/bin/env python3
"""IAM setup of bench/authz/run.sh: an IAM user whose access to RunTask and DescribeTasks is
decided by policies, made with boto3 through Berth's IAM API (root credentials).

The user gets 5 customer managed policies of 10 statements each, every statement with
conditions (aws:SourceIp, aws:RequestedRegion, StringLike on ecs:cluster, dates, tags), most
of them about ECS so that the evaluator has to look at them for ecs:RunTask; the allow for
ecs:RunTask / ecs:DescribeTasks (and DescribeClusters, the load generator's warm-up call)
is in the third policy. Prints "ACCESS_KEY_ID SECRET_ACCESS_KEY" of the user's new key.

Usage: setup_iam.py --endpoint URL --access-key ROOT_KEY --secret-key ROOT_SECRET
       [--user NAME] [--out FILE.json]
"""

import argparse
import json
import sys
import uuid

import boto3
from botocore.config import Config

POLICIES = 5
STATEMENTS = 10
GRANT_POLICY = 2


def statement(k, j):
    """The j-th statement of policy k: ten shapes, each with conditions, none granting
    RunTask or DescribeTasks on the benchmark's cluster."""
    team = f"team-{k}"
    sid = f"P{k}S{j}"
    shapes = [
        # An IP fence over all of ECS: a deny whose condition does not hold here.
        {"Effect": "Deny", "Action": "ecs:*", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8",
                                                         "192.168.0.0/16"]}}},
        # Reads in two regions from two networks.
        {"Effect": "Allow", "Action": ["ecs:List*", "ecs:DescribeServices"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]},
                       "IpAddress": {"aws:SourceIp": ["127.0.0.0/8", f"10.{k}.0.0/16"]}}},
        # Running tasks only on clusters not named for the benchmark or CI: denied elsewhere.
        {"Effect": "Deny", "Action": ["ecs:RunTask", "ecs:StartTask"], "Resource": "*",
         "Condition": {"StringNotLike": {"ecs:cluster": ["arn:aws:ecs:*:*:cluster/bench-*",
                                                        "arn:aws:ecs:*:*:cluster/ci-*"]}}},
        # Pulls from ECR in one region.
        {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage",
                                       "ecr:GetDownloadUrlForLayer"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
        # The team's own log groups.
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"arn:aws:logs:us-east-1:*:log-group:/ecs/{team}-*:*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
        # Stopping and updating on the team's clusters, after a date.
        {"Effect": "Allow", "Action": ["ecs:StopTask", "ecs:UpdateService"], "Resource": "*",
         "Condition": {"StringLike": {"ecs:cluster": f"arn:aws:ecs:*:*:cluster/{team}-*"},
                       "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}},
        # RunTask of the team's task definitions on the team's clusters.
        {"Effect": "Allow", "Action": "ecs:RunTask",
         "Resource": f"arn:aws:ecs:us-east-1:*:task-definition/{team}-*:*",
         "Condition": {"StringLike": {"ecs:cluster": f"arn:aws:ecs:*:*:cluster/{team}-*"},
                       "StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
        # No IAM outside the admin network.
        {"Effect": "Deny", "Action": "iam:*", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": "10.255.0.0/16"}}},
        # Tagging with the team's tag only.
        {"Effect": "Allow", "Action": ["ecs:TagResource", "ecs:CreateService"],
         "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/team": team},
                       "ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}},
        # Describing the team's tasks, over TLS only.
        {"Effect": "Allow", "Action": ["ecs:DescribeTasks", "ecs:DescribeContainerInstances"],
         "Resource": f"arn:aws:ecs:us-east-1:*:task/{team}-*/*",
         "Condition": {"Bool": {"aws:SecureTransport": "true"},
                       "StringLike": {"ecs:cluster": f"arn:aws:ecs:*:*:cluster/{team}-*"}}},
    ]
    s = dict(shapes[j % len(shapes)])
    s["Sid"] = sid
    return s


def grant(k):
    """The two statements of the grant policy that allow the benchmark's calls."""
    return [
        {"Sid": f"P{k}RunTask", "Effect": "Allow", "Action": "ecs:RunTask",
         "Resource": "arn:aws:ecs:us-east-1:*:task-definition/bench-*",
         "Condition": {"StringLike": {"ecs:cluster": "arn:aws:ecs:us-east-1:*:cluster/bench-*"},
                       "IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
                       "StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
        {"Sid": f"P{k}Describe", "Effect": "Allow",
         "Action": ["ecs:DescribeTasks", "ecs:DescribeClusters"],
         "Resource": ["arn:aws:ecs:us-east-1:*:task/bench-*/*",
                      "arn:aws:ecs:us-east-1:*:cluster/bench-*"],
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
                       "StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
    ]


def document(k):
    statements = [statement(k, j) for j in range(STATEMENTS)]
    if k == GRANT_POLICY:
        statements[:2] = grant(k)
    return {"Version": "2012-10-17", "Statement": statements}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret-key", required=True)
    p.add_argument("--user", default=f"bench-{uuid.uuid4().hex[:8]}")
    p.add_argument("--out")
    args = p.parse_args()
    iam = boto3.session.Session().client(
        "iam", endpoint_url=args.endpoint, region_name="us-east-1",
        aws_access_key_id=args.access_key, aws_secret_access_key=args.secret_key,
        config=Config(retries={"total_max_attempts": 1}))
    iam.create_user(UserName=args.user)
    arns = []
    for k in range(POLICIES):
        doc = document(k)
        assert len(doc["Statement"]) == STATEMENTS
        arn = iam.create_policy(PolicyName=f"{args.user}-p{k}",
                                PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=args.user, PolicyArn=arn)
        arns.append(arn)
    key = iam.create_access_key(UserName=args.user)["AccessKey"]
    attached = iam.list_attached_user_policies(UserName=args.user)["AttachedPolicies"]
    assert sorted(a["PolicyArn"] for a in attached) == sorted(arns), attached
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"user": args.user, "policies": arns,
                       "documents": [document(k) for k in range(POLICIES)]}, f, indent=1)
    print(key["AccessKeyId"], key["SecretAccessKey"])


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Create in LocalStack what infra/template.yaml declares for S3 and SQS, and describe the rest.

Reads the template (not a hand-written list): every AWS::SQS::Queue (name, visibility timeout,
retention, RedrivePolicy, RedriveAllowPolicy), every AWS::S3::Bucket (name, versioning, the
NotificationConfiguration's queue notifications with their key filters). Fn::ForEach loops
(the AWS::LanguageExtensions transform) are expanded first, as CloudFormation does. !Ref, !Sub,
!GetAtt, !Join, !Select, !Split, !If, !FindInMap and the pseudo parameters are resolved for stack
`medrec`, account 000000000000 and region us-east-1, with parameter defaults (override with
--parameter K=V). `--expand` prints the expanded template as JSON and touches nothing.
Re-running is safe: queues and buckets are reused, attributes set again, and the bucket
notification is only written when it differs (writing it makes S3 send an s3:TestEvent).

Then writes, under --out-dir (default .local/):
  mappings.json   one entry per SQS event of an AWS::Serverless::Function: the event source
                  mappings LocalStack cannot run without Docker, for the Rust poller to emulate.
  resources.json  bucket, features queue URL (from the template's Outputs), endpoint, region.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

# ----------------------------------------------------------------------------------------------
# Template loading: CloudFormation's short-form tags (!Ref, !Sub, !GetAtt ...) as the long forms.
# ----------------------------------------------------------------------------------------------

_TAGS = ["Ref", "Condition", "Sub", "GetAtt", "Join", "Select", "Split", "If", "Equals", "Not",
         "And", "Or", "FindInMap", "Base64", "Cidr", "GetAZs", "ImportValue", "Transform",
         "Length", "ToJsonString"]


class _CfnLoader(yaml.SafeLoader):
    pass


def _constructor(tag: str):
    key = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _tag in _TAGS:
    _CfnLoader.add_constructor(f"!{_tag}", _constructor(_tag))
# CloudFormation keeps YAML timestamps as strings ("2010-09-09").
_CfnLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in _CfnLoader.yaml_implicit_resolvers.items()
}


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 (SafeLoader subclass)


# ----------------------------------------------------------------------------------------------
# Fn::ForEach (AWS::LanguageExtensions), expanded the way CloudFormation documents it:
#   "Fn::ForEach::LoopName": [Identifier, Collection, {"OutputKey${Identifier}": OutputValue}]
# Every item of Collection (a list, or a Ref to a CommaDelimitedList parameter) yields a copy of the
# fragment, merged into the enclosing mapping where the loop key stood, with ${Identifier} and
# &{Identifier} (the item without non-alphanumeric characters) replaced in keys and in Fn::Sub
# strings, and {"Ref": Identifier} replaced by the item. Loops nest (an inner fragment sees the
# outer identifiers). Plain strings are left alone, as in cfn-lint's model of the transform; one
# that names a loop identifier is refused (SAM CLI would substitute it, cfn-lint would not: use
# !Sub). Inside a loop, what the transform resolves is resolved too: a Fn::FindInMap with literal
# keys becomes its value, and a Fn::Sub whose variables are literals gets them substituted and,
# with no ${...} left, becomes a plain string. So `Ref: !Sub 'Raw${Table}Queue'` becomes
# `Ref: RawRxQueue`, and `!Sub ["clean-${name}", {name: !FindInMap [TableNames, !Ref Table,
# Name]}]` becomes `clean-rx`: the copies read as the hand-written resources would.
# ----------------------------------------------------------------------------------------------

FOREACH = "Fn::ForEach::"
_SUB_VARIABLE = re.compile(r"\$\{(?!!)[^}]*\}")


class TemplateError(SystemExit):
    """The template is not one CloudFormation would accept (reported like SystemExit)."""


def _substitute(text: str, values: dict[str, str]) -> str:
    for identifier, item in values.items():
        text = text.replace("${" + identifier + "}", item)
        text = text.replace("&{" + identifier + "}", re.sub(r"[^0-9A-Za-z]", "", item))
    return text


def _names(text: str, identifiers: Any) -> bool:
    return any("${" + i + "}" in text or "&{" + i + "}" in text for i in identifiers)


class _ForEachExpander:
    def __init__(self, template: dict[str, Any], overrides: dict[str, str]):
        self.params = {name: overrides.get(name, spec.get("Default"))
                       for name, spec in (template.get("Parameters") or {}).items()}
        self.mappings = template.get("Mappings") or {}

    def expand(self, node: Any, bindings: dict[str, str], where: str) -> Any:
        if isinstance(node, list):
            return [self.expand(v, bindings, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str):
            if _names(node, bindings):
                raise TemplateError(f"provision: {where}: {node!r} names a Fn::ForEach identifier "
                                    "outside a key or a Fn::Sub (write it as !Sub)")
            return node
        if not isinstance(node, dict):
            return node
        if len(node) == 1 and bindings:
            (key, arg), = node.items()
            if key == "Ref" and isinstance(arg, str) and arg in bindings:
                return bindings[arg]
            if key == "Fn::Sub":
                return self.sub(arg, bindings, where)
            if key == "Fn::FindInMap" and isinstance(arg, list):
                return self.find_in_map(self.expand(arg, bindings, f"{where}.{key}"))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if isinstance(key, str) and key.startswith(FOREACH):
                items = self.loop(key, value, bindings, f"{where}.{key}")
            else:
                new_key = _substitute(key, bindings) if isinstance(key, str) else key
                items = [(new_key, self.expand(value, bindings, f"{where}.{new_key}"))]
            for new_key, new_value in items:
                if new_key in out:
                    raise TemplateError(f"provision: {where}: {new_key} is declared twice (Fn::ForEach)")
                out[new_key] = new_value
        return out

    def sub(self, arg: Any, bindings: dict[str, str], where: str) -> Any:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})
        if not isinstance(text, str) or not isinstance(variables, dict):
            return {"Fn::Sub": arg}
        text = _substitute(text, bindings)
        variables = self.expand(variables, bindings, f"{where}.Fn::Sub")
        literal = {k: v for k, v in variables.items() if isinstance(v, str) and "${" not in v}
        text = _substitute(text, literal)
        rest = {k: v for k, v in variables.items() if k not in literal}
        if rest:
            return {"Fn::Sub": [text, rest]}
        return {"Fn::Sub": text} if _SUB_VARIABLE.search(text) else text.replace("${!", "${")

    def find_in_map(self, arg: list[Any]) -> Any:
        if len(arg) >= 3 and all(isinstance(a, str) for a in arg[:3]):
            name, top, second = arg[:3]
            if second in (self.mappings.get(name) or {}).get(top, {}):
                return copy.deepcopy(self.mappings[name][top][second])
        return {"Fn::FindInMap": arg}

    def loop(self, key: str, value: Any, bindings: dict[str, str],
             where: str) -> list[tuple[str, Any]]:
        if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
                and isinstance(value[2], dict)):
            raise TemplateError(f"provision: {where}: want [Identifier, Collection, {{OutputKey: OutputValue}}]")
        identifier, collection, fragment = value
        if identifier in self.params or identifier in bindings:
            raise TemplateError(f"provision: {where}: identifier {identifier} is already a parameter "
                                "or an enclosing loop's identifier")
        if isinstance(collection, dict) and set(collection) == {"Ref"} and collection["Ref"] in self.params:
            collection = [v.strip() for v in str(self.params[collection["Ref"]]).split(",")]
        if not isinstance(collection, list) or any(isinstance(v, (dict, list)) for v in collection):
            raise TemplateError(f"provision: {where}: the collection must be a list of strings or a "
                                "Ref to a CommaDelimitedList parameter")
        if any(not _names(k, [identifier]) for k in fragment if not k.startswith(FOREACH)):
            raise TemplateError(f"provision: {where}: every OutputKey must contain ${{{identifier}}} "
                                f"or &{{{identifier}}}")
        out = []
        for item in collection:
            out.extend(self.expand(fragment, {**bindings, identifier: str(item)}, where).items())
        return out


def expand_template(template: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """The template with every Fn::ForEach of Conditions, Resources and Outputs expanded."""
    expander = _ForEachExpander(template, overrides or {})
    expanded = dict(template)
    for section in ("Conditions", "Resources", "Outputs"):
        if isinstance(template.get(section), dict):
            expanded[section] = expander.expand(template[section], {}, section)
    if expanded != template:
        transform = template.get("Transform") or []
        if "AWS::LanguageExtensions" not in ([transform] if isinstance(transform, str) else transform):
            raise TemplateError("provision: Fn::ForEach needs Transform AWS::LanguageExtensions")
    return expanded


# ----------------------------------------------------------------------------------------------
# Resolving intrinsic functions, enough for names, ARNs and URLs.
# ----------------------------------------------------------------------------------------------

class Unresolvable(Exception):
    """A value depends on something the emulator does not create (a KMS key, the database...)."""


class Resolver:
    def __init__(self, template: dict[str, Any], stack: str, account: str, region: str,
                 overrides: dict[str, str]):
        self.template = template
        self.pseudo = {
            "AWS::StackName": stack,
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/local",
        }
        self.params: dict[str, Any] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in overrides:
                self.params[name] = overrides[name]
            elif "Default" in spec:
                self.params[name] = spec["Default"]
        unknown = set(overrides) - set(self.params)
        if unknown:
            raise SystemExit(f"--parameter: no such template parameter: {', '.join(sorted(unknown))}")
        # logical id -> {"Ref": ..., "<attribute>": ...} of the resources created here
        self.physical: dict[str, dict[str, Any]] = {}

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        raise Unresolvable(f"Ref {name}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        attrs = self.physical.get(logical_id)
        if attrs is None or attribute not in attrs:
            raise Unresolvable(f"GetAtt {logical_id}.{attribute}")
        return attrs[attribute]

    def find_in_map(self, arg: list[Any]) -> Any:
        name, top, second = (str(self.resolve(a)) for a in arg[:3])
        try:
            return self.resolve((self.template.get("Mappings") or {})[name][top][second])
        except KeyError:
            if len(arg) > 3 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                return self.resolve(arg[3]["DefaultValue"])
            raise SystemExit(f"provision: Fn::FindInMap {name}/{top}/{second}: no such mapping entry")

    def condition(self, name: str) -> bool:
        return bool(self.resolve((self.template.get("Conditions") or {})[name]))

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(self.resolve(variables[inner]))
            if "." in inner and inner.split(".", 1)[0] not in self.pseudo:
                logical_id, attribute = inner.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(inner))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                # An intrinsic inside Ref or Fn::GetAtt is AWS::LanguageExtensions.
                return self.ref(self.resolve(arg) if isinstance(arg, dict) else arg)
            if key == "Fn::GetAtt":
                if isinstance(arg, str):
                    arg = arg.split(".", 1)
                return self.get_att(*(self.resolve(a) for a in arg[:2]))
            if key == "Fn::FindInMap":
                return self.find_in_map(arg)
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                return self.sub(arg[0], arg[1])
            if key == "Fn::Join":
                return str(arg[0]).join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                a, b = self.resolve(arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise Unresolvable(key)
        return {k: self.resolve(v) for k, v in value.items()}


def resources_of(template: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(lid, res) for lid, res in (template.get("Resources") or {}).items()
            if res.get("Type") == kind]


# ----------------------------------------------------------------------------------------------
# Provisioning
# ----------------------------------------------------------------------------------------------

QUEUE_ATTRIBUTES = ["DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
                    "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout"]


def provision_queues(sqs: Any, resolver: Resolver, template: dict[str, Any],
                     account: str, region: str) -> dict[str, dict[str, Any]]:
    queues = resources_of(template, "AWS::SQS::Queue")
    # Pass 1: every queue exists (no attributes, so an existing queue is simply reused), which
    # makes every queue's ARN known before any RedrivePolicy names one.
    for lid, res in queues:
        props = res.get("Properties") or {}
        name = resolver.resolve(props.get("QueueName", f"{resolver.pseudo['AWS::StackName']}-{lid}"))
        create_attrs = {}
        if props.get("FifoQueue"):
            create_attrs["FifoQueue"] = "true"
        url = sqs.create_queue(QueueName=name, Attributes=create_attrs)["QueueUrl"]
        arn = f"arn:aws:sqs:{region}:{account}:{name}"
        resolver.physical[lid] = {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}
    # Pass 2: attributes, set again on every run.
    described: dict[str, dict[str, Any]] = {}
    for lid, res in queues:
        props = res.get("Properties") or {}
        attrs = {key: str(resolver.resolve(props[key])) for key in QUEUE_ATTRIBUTES if key in props}
        redrive = None
        if "RedrivePolicy" in props:
            redrive = resolver.resolve(props["RedrivePolicy"])
            attrs["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": redrive["deadLetterTargetArn"],
                 "maxReceiveCount": int(redrive["maxReceiveCount"])})
        if "RedriveAllowPolicy" in props:
            attrs["RedriveAllowPolicy"] = json.dumps(resolver.resolve(props["RedriveAllowPolicy"]))
        url = resolver.physical[lid]["QueueUrl"]
        if attrs:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)
        described[lid] = {
            "url": url,
            "arn": resolver.physical[lid]["Arn"],
            "visibility_timeout_s": int(attrs.get("VisibilityTimeout", 30)),
            "redrive": redrive,
        }
    return described


def notification_key(config: dict[str, Any]) -> tuple:
    rules = (config.get("Filter") or {}).get("Key", {}).get("FilterRules", [])
    return (config["QueueArn"], tuple(sorted(config["Events"])),
            tuple(sorted((r["Name"].lower(), r["Value"]) for r in rules)))


def provision_buckets(s3: Any, resolver: Resolver, template: dict[str, Any]) -> None:
    for lid, res in resources_of(template, "AWS::S3::Bucket"):
        props = res.get("Properties") or {}
        name = resolver.resolve(props.get("BucketName", f"{resolver.pseudo['AWS::StackName']}-{lid}".lower()))
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as err:
            if err.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        resolver.physical[lid] = {"Ref": name, "Arn": f"arn:aws:s3:::{name}",
                                  "DomainName": f"{name}.s3.amazonaws.com"}
        if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})

        notifications = props.get("NotificationConfiguration") or {}
        for other in ("TopicConfigurations", "LambdaConfigurations", "EventBridgeConfiguration"):
            if other in notifications:
                print(f"provision: {lid}: {other} not emulated (S3 -> SQS only)", file=sys.stderr)
        wanted = []
        for i, qc in enumerate(notifications.get("QueueConfigurations") or []):
            qc = resolver.resolve(qc)
            rules = ((qc.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
            config = {
                "Id": f"{lid}-{i}",
                "QueueArn": qc["Queue"],
                "Events": [qc["Event"]],
            }
            if rules:
                config["Filter"] = {"Key": {"FilterRules": [
                    {"Name": r["Name"].lower(), "Value": r["Value"]} for r in rules]}}
            wanted.append(config)
        current = s3.get_bucket_notification_configuration(Bucket=name).get("QueueConfigurations", [])
        if sorted(map(notification_key, current)) != sorted(map(notification_key, wanted)):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"QueueConfigurations": wanted})
            print(f"provision: {name}: {len(wanted)} S3 -> SQS notification(s) written")


def binary_of(lid: str, props: dict[str, Any], metadata: dict[str, Any]) -> str:
    binary = (metadata.get("BuildProperties") or {}).get("Binary")
    if binary:
        return binary
    code_uri = props.get("CodeUri")
    if isinstance(code_uri, str):
        match = re.search(r"target/lambda/([^/]+)/?$", code_uri)
        if match:
            return match.group(1)
    raise SystemExit(f"provision: {lid}: no binary name (Metadata.BuildProperties.Binary or a "
                     "CodeUri ending in target/lambda/<binary>/)")


def event_source_mappings(resolver: Resolver, template: dict[str, Any],
                          queues: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    by_arn = {q["arn"]: q for q in queues.values()}
    by_url = {q["url"]: q for q in queues.values()}
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    mappings = []
    for lid, res in resources_of(template, "AWS::Serverless::Function"):
        props = res.get("Properties") or {}
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") != "SQS":
                continue
            ev = event.get("Properties") or {}
            queue_ref = resolver.resolve(ev["Queue"])
            queue = by_arn.get(queue_ref) or by_url.get(queue_ref)
            if queue is None:
                raise SystemExit(f"provision: {lid}.{event_name}: queue {queue_ref} is not in the template")
            redrive = queue["redrive"]
            dlq = by_arn.get(redrive["deadLetterTargetArn"]) if redrive else None
            env: dict[str, str] = {}
            for key, value in ((props.get("Environment") or {}).get("Variables") or {}).items():
                try:
                    env[key] = str(resolver.resolve(value))
                except Unresolvable:
                    pass  # cloud-only (database endpoint, secrets): local code uses DATABASE_URL
            scaling = ev.get("ScalingConfig") or {}
            mappings.append({
                "function": binary_of(lid, props, res.get("Metadata") or {}),
                "logical_id": lid,
                "function_name": resolver.resolve(props.get("FunctionName", lid)),
                "event": event_name,
                "queue_url": queue["url"],
                "dlq_url": dlq["url"] if dlq else None,
                "batch_size": int(resolver.resolve(ev.get("BatchSize", 10))),
                "maximum_batching_window_s": int(resolver.resolve(ev.get("MaximumBatchingWindowInSeconds", 0))),
                "visibility_timeout_s": queue["visibility_timeout_s"],
                "max_receive_count": int(redrive["maxReceiveCount"]) if redrive else None,
                "report_batch_item_failures": "ReportBatchItemFailures" in (ev.get("FunctionResponseTypes") or []),
                "maximum_concurrency": int(resolver.resolve(scaling["MaximumConcurrency"])) if "MaximumConcurrency" in scaling else None,
                "timeout_s": int(resolver.resolve(props.get("Timeout", globals_fn.get("Timeout", 3)))),
                "environment": env,
            })
    return mappings


def outputs(resolver: Resolver, template: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for name, spec in (template.get("Outputs") or {}).items():
        try:
            values[name] = resolver.resolve(spec["Value"])
        except Unresolvable:
            pass  # e.g. ApiUrl: served locally by `cargo lambda watch`, not by LocalStack
    return values


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main() -> None:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=repo / "infra" / "template.yaml")
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"))
    parser.add_argument("--stack-name", default="medrec")
    parser.add_argument("--account", default="000000000000",
                        help="LocalStack's account for the access key `test`")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--out-dir", type=Path, default=repo / ".local")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                        help="override a template parameter's default")
    parser.add_argument("--expand", action="store_true",
                        help="print the template with its Fn::ForEach loops expanded (JSON) and exit")
    args = parser.parse_args()

    overrides = dict(p.split("=", 1) for p in args.parameter)
    template = expand_template(load_template(args.template), overrides)
    if args.expand:
        json.dump(template, sys.stdout, indent=1)
        print()
        return
    resolver = Resolver(template, args.stack_name, args.account, args.region, overrides)

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name=args.region)
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3})
    sqs = session.client("sqs", endpoint_url=args.endpoint, config=config)
    s3 = session.client("s3", endpoint_url=args.endpoint, config=config)

    queues = provision_queues(sqs, resolver, template, args.account, args.region)
    provision_buckets(s3, resolver, template)
    mappings = event_source_mappings(resolver, template, queues)
    outs = outputs(resolver, template)

    resources = {
        "bucket": outs.get("BucketName"),
        "features_queue_url": outs.get("FeaturesQueueUrl"),
        "endpoint": args.endpoint,
        "region": args.region,
        "account_id": args.account,
        "stack_name": args.stack_name,
        "queues": {lid: q["url"] for lid, q in queues.items()},
        "outputs": outs,
    }
    if not resources["bucket"] or not resources["features_queue_url"]:
        raise SystemExit("provision: the template's Outputs need BucketName and FeaturesQueueUrl")
    write_json(args.out_dir / "mappings.json", mappings)
    write_json(args.out_dir / "resources.json", resources)
    print(f"provision: bucket {resources['bucket']}, {len(queues)} queues, "
          f"{len(mappings)} event source mapping(s) -> {args.out_dir}/mappings.json, resources.json")


if __name__ == "__main__":
    main()

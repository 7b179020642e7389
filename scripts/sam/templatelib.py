"""The template as CloudFormation would deploy it, offline: transformed by the SAM translator (the
transform `sam deploy` asks CloudFormation for), then rendered for one set of parameters (every
condition decided, every parameter substituted, what a false condition guards removed), so that
checkers that do not evaluate intrinsics see what a deployment with those parameters creates.

Used by scripts/sam/lint-transformed, scripts/sam/policy-check and scripts/sam/storage-definitions.
No AWS call: the translator only needs a region, set here, and is given no managed policies."""
import copy
import json
import logging
import os
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]

OFFLINE_ENVIRONMENT = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                       "AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline",
                       "AWS_EC2_METADATA_DISABLED": "true", "SAM_CLI_TELEMETRY": "0"}

# What the rendered template's pseudo parameters stand for.
PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "connector-registry"}

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:obsrv-postgres"
TOPIC = "arn:aws:sns:us-east-1:123456789012:registry-alarms"
PRINCIPAL = "arn:aws:iam::123456789012:role/obsrv-runtime"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# Parameters a deployment must give (the template's Rules) whichever else it gives.
JWT = {"AuthMode": "jwt", "JwtIssuer": "https://idp.example/realms/obsrv", "JwtAudience": "registry"}
# Every optional feature on: the token authorizer, notifications, the Obsrv mirror in a VPC with
# its archive copy, customer managed keys and reserved concurrency.
ALL_FEATURES = {"AuthMode": "token", "JwtPublicKey": "-----BEGIN PUBLIC KEY-----", "AlarmTopicArn": TOPIC,
                "UrlAccessTrustedPrincipal": PRINCIPAL, "ObsrvPostgresSecretArn": SECRET,
                "ObsrvSubnetIds": "subnet-1,subnet-2", "ObsrvSecurityGroupIds": "sg-1",
                "ObsrvArchiveBucket": "obsrv-container", "ObsrvArchivePrefix": "obsrv/",
                "TableKmsKeyArn": KEY, "ArchiveKmsKeyArn": KEY, "LogKmsKeyArn": KEY, "ReservedConcurrency": "10"}


def offline():
    os.environ.update(OFFLINE_ENVIRONMENT)
    # The translator logs its own usage metrics on every transform.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)


def load_template():
    """template.yaml as `sam package` leaves it: code in S3."""
    from cfnlint.decode import cfn_yaml
    template = json.loads(json.dumps(cfn_yaml.load(str(ROOT / "template.yaml")), default=str))
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts/registry.zip"
    return template


class NoManagedPolicies:
    def load(self):
        return {}


def transform(template, parameters):
    from samtranslator.translator.transform import transform as sam_transform
    return sam_transform(copy.deepcopy(template), parameters, NoManagedPolicies())


class _NoValue:
    pass


NO_VALUE = _NoValue()


def render(transformed, parameters):
    """The transformed template with `parameters` (the rest at their defaults) applied."""
    values = {}
    for name, spec in transformed.get("Parameters", {}).items():
        value = parameters.get(name, spec.get("Default", ""))
        if spec.get("Type") == "CommaDelimitedList":
            value = [part for part in str(value).split(",")] if value != "" else [""]
        elif spec.get("Type") == "Number":
            value = int(value)
        values[name] = value
    conditions = transformed.get("Conditions", {})
    decided = {}

    def condition(name):
        if name not in decided:
            decided[name] = truth(conditions[name])
        return decided[name]

    def truth(node):
        ((function, arguments),) = node.items()
        if function == "Fn::Equals":
            left, right = (resolve(a) for a in arguments)
            return str(left if not isinstance(left, list) else ",".join(left)) == \
                str(right if not isinstance(right, list) else ",".join(right))
        if function == "Fn::Not":
            return not truth(arguments[0])
        if function == "Fn::And":
            return all(truth(a) for a in arguments)
        if function == "Fn::Or":
            return any(truth(a) for a in arguments)
        if function == "Condition":
            return condition(arguments)
        raise ValueError(f"a condition function the renderer does not know: {function}")

    def substitute(text):
        def one(match):
            name = match.group(1)
            if name in values and not isinstance(values[name], list):
                return str(values[name])
            return PSEUDO.get(name, match.group(0))
        return re.sub(r"\$\{([A-Za-z0-9:]+)\}", one, text)

    def resolve(node):
        if isinstance(node, list):
            return [v for v in (resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref" and isinstance(argument, str):
                if argument == "AWS::NoValue":
                    return NO_VALUE
                if argument in values:
                    return values[argument]
                if argument in PSEUDO:
                    return PSEUDO[argument]
            if key == "Fn::If":
                name, when_true, when_false = argument
                return resolve(when_true if condition(name) else when_false)
            if key == "Fn::Join":
                separator, parts = argument[0], resolve(argument[1])
                if isinstance(parts, list) and all(isinstance(p, str) for p in parts):
                    return separator.join(parts)
                return {key: [separator, parts]}
            if key == "Fn::Sub":
                if isinstance(argument, str):
                    text = substitute(argument)
                    return text if "${" not in text else {key: text}
                text, variables = argument
                return {key: [substitute(text), resolve(variables)]}
        result = {}
        for key, value in node.items():
            value = resolve(value)
            if value is not NO_VALUE:
                result[key] = value
        return result

    rendered = {key: value for key, value in transformed.items()
                if key not in ("Parameters", "Conditions", "Rules", "Resources", "Outputs")}
    for section in ("Resources", "Outputs"):
        kept = {}
        for name, entry in transformed.get(section, {}).items():
            if "Condition" in entry and not condition(entry["Condition"]):
                continue
            entry = {k: v for k, v in entry.items() if k != "Condition"}
            kept[name] = resolve(entry)
        rendered[section] = kept
    # What depended on a resource no longer there depends on nothing.
    for entry in rendered["Resources"].values():
        if "DependsOn" in entry:
            depends = entry["DependsOn"] if isinstance(entry["DependsOn"], list) else [entry["DependsOn"]]
            depends = [d for d in depends if d in rendered["Resources"]]
            if depends:
                entry["DependsOn"] = depends
            else:
                del entry["DependsOn"]
    return rendered

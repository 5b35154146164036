"""Data stores (docs/architecture.md §2.6): Aurora PostgreSQL Serverless v2 behind RDS Proxy,
ElastiCache Serverless (Valkey), the S3 buckets, the secrets (platform admin token, provider
keys), the customer-managed KMS key for tenants' provider credentials and, optionally, the
OpenSearch domain (infra/opensearch.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Duration, Fn, RemovalPolicy, SecretValue
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import StratusConfig
from infra.network import Network
from infra.opensearch import OpenSearchDomain
from shared.cache.redis_adapter import APP_ACCESS_STRING
from shared.cache.redis_adapter import APP_USER as CACHE_APP_USER

DATABASE_NAME = "stratus"
OWNER_USER = "stratus_owner"
# Must match shared.db.database.APP_ROLE: the migration function creates this role with the
# password from the app secret; RDS Proxy logs it in with the same secret.
APP_USER = "stratus_app"
POSTGRES_PORT = 5432
# RDS Proxy (docs/adr/0047): below the shortest database function timeout (10 s) and the
# client's connect timeout (shared.config db_connect_timeout_s, 5 s).
PROXY_BORROW_TIMEOUT = Duration.seconds(4)
PROXY_IDLE_CLIENT_TIMEOUT = Duration.minutes(5)
PROXY_MAX_IDLE_PERCENT = 40
# ElastiCache Serverless: 6379 reads and writes the primary, 6380 reads from replicas.
CACHE_PORTS = ec2.Port.tcp_range(6379, 6380)
# The cache's data-storage limit (a cost ceiling; its alarm fires well before).
CACHE_MAX_GB = 10
CACHE_ENGINE = "valkey"
# ElastiCache requires a user named "default" in every user group; a Valkey group admits only
# users that authenticate, so it has a password (never granted to anyone) and no rights.
CACHE_DEFAULT_USER = "default"
CACHE_DEFAULT_ACCESS_STRING = "off -@all"
# ElastiCache passwords: 16-128 printable characters, some punctuation refused.
CACHE_PASSWORD_LENGTH = 48
ADMIN_TOKEN_PREFIX = "pat_"  # noqa: S105 - the public token prefix (shared.auth.tokens.PREFIX)
# The encryption context key shared.models.credentials.KmsCipher binds every tenant
# credential to ({"tenant_id": "<uuid>"}): a ciphertext decrypts only for its tenant.
CREDENTIALS_CONTEXT_KEY = "tenant_id"
# Catalog kms:<name> actions → KMS actions. Explicit, never kms:* or the CDK grants'
# kms:ReEncrypt* / kms:GenerateDataKey* families.
KEY_ACTIONS = {"encrypt": "kms:Encrypt", "decrypt": "kms:Decrypt"}
# Key administration (the account, through IAM): everything CloudFormation and operators
# need to manage the key, and no cryptographic operation. Listed, not kms:Create*-style.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey", "kms:DisableKey",
    "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation", "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus", "kms:ListGrants", "kms:ListKeyPolicies", "kms:ListKeyRotations",
    "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:RevokeGrant", "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
# The empty JSON object the provider-keys secret starts as: operators put the keys in.
PROVIDER_KEYS_INITIAL = "{}"


def key_user_tag(name: str) -> str:
    """The role tag the key policy of ``kms:<name>`` requires of its users (stratus:kms:credentials)."""
    return f"stratus:kms:{name}"


KEY_USER_TAG_VALUE = "use"


@dataclass(frozen=True)
class CustomerKey:
    """A customer-managed key and the encryption context keys every use of it must carry."""

    key: kms.Key
    context_keys: tuple[str, ...]


class Data(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StratusConfig, network: Network) -> None:
        super().__init__(scope, construct_id)
        self._database(config, network)
        self._cache(config, network)
        self._buckets(config)
        self._admin_token()
        self._provider_keys()
        self._credentials_key()
        self._origin_secret()
        # The vector store: PostgreSQL (pgvector) by default, nothing more to run; a managed
        # OpenSearch domain when the deployment chose it (-c vector_store=opensearch).
        self.opensearch = (OpenSearchDomain(self, "OpenSearch", config=config, network=network)
                           if config.opensearch else None)
        # Functions reach the database through the proxy and the cache directly; the
        # migration function alone reaches the cluster (see Network.database_admin_sg).
        self.proxy.connections.allow_from(network.functions_sg, ec2.Port.tcp(POSTGRES_PORT),
                                          "Stratus functions to RDS Proxy")
        self.cluster.connections.allow_default_port_from(network.database_admin_sg,
                                                         "Stratus migrations to the cluster")
        self.cache_sg.add_ingress_rule(network.functions_sg, CACHE_PORTS, "Stratus functions to Valkey (TLS)")
        network.functions_sg.add_egress_rule(self.cache_sg, CACHE_PORTS, "Stratus functions to Valkey (TLS)")
        if config.retain_secrets:
            self._retain_secrets()

    def _retain_secrets(self) -> None:
        # A production stack deleted by mistake must not take the passwords of a retained
        # (snapshotted) database, the admin token or the provider keys with it.
        owner = self.cluster.node.find_child("Secret")
        for secret in (owner, self.app_secret, self.admin_token, self.provider_keys, self.origin_secret,
                       self.cache_secret, self.cache_default_secret):
            secret.node.default_child.apply_removal_policy(RemovalPolicy.RETAIN)  # type: ignore[union-attr]

    # --- Aurora PostgreSQL + RDS Proxy -------------------------------------------------

    def _database(self, config: StratusConfig, network: Network) -> None:
        cluster_identifier = f"{config.prefix}-db"
        # Created up front so the exported PostgreSQL log has a retention (RDS would create
        # it without one); the name is the one RDS writes to.
        postgres_logs = logs.LogGroup(
            self, "PostgresLogs", log_group_name=f"/aws/rds/cluster/{cluster_identifier}/postgresql",
            retention=config.log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.cluster_sg = ec2.SecurityGroup(self, "ClusterSg", vpc=network.vpc, allow_all_outbound=False,
                                            description="Aurora PostgreSQL cluster")
        self.cluster = rds.DatabaseCluster(
            self, "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_16_6),
            cluster_identifier=cluster_identifier,
            writer=rds.ClusterInstance.serverless_v2("Writer", auto_minor_version_upgrade=True,
                                                     enable_performance_insights=True),
            readers=[rds.ClusterInstance.serverless_v2(f"Reader{i + 1}", scale_with_writer=True,
                                                       auto_minor_version_upgrade=True,
                                                       enable_performance_insights=True)
                     for i in range(config.aurora_readers)],
            serverless_v2_min_capacity=config.aurora_min_acu,
            serverless_v2_max_capacity=config.aurora_max_acu,
            vpc=network.vpc,
            vpc_subnets=network.private_subnets,
            security_groups=[self.cluster_sg],
            default_database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_generated_secret(OWNER_USER),
            storage_encrypted=True,
            # Password auth is what the functions use (through the proxy); IAM auth stays
            # available for operators.
            iam_authentication=True,
            # Off at creation, whatever the profile says: a first deploy that fails must be able
            # to roll the cluster back. infra/migrations.py turns it on (config.deletion_protection)
            # once the whole stack exists (docs/adr/0048-prod-profile-and-safe-migrations.md).
            deletion_protection=False,
            backup=rds.BackupProps(retention=Duration.days(7)),
            cloudwatch_logs_exports=["postgresql"],
            copy_tags_to_snapshot=True,
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        self.cluster.node.add_dependency(postgres_logs)
        assert self.cluster.secret is not None  # from_generated_secret always makes one
        self.owner_secret = self.cluster.secret

        # The application role's credentials (non-owner, row-level security applies). Not
        # attached to the cluster: its host is the proxy, given to functions as DATABASE_HOST.
        self.app_secret = rds.DatabaseSecret(self, "AppSecret", username=APP_USER, dbname=DATABASE_NAME)

        self.proxy_sg = ec2.SecurityGroup(self, "ProxySg", vpc=network.vpc, allow_all_outbound=True,
                                          description="RDS Proxy in front of the Aurora cluster")
        self.proxy = rds.DatabaseProxy(
            self, "Proxy",
            proxy_target=rds.ProxyTarget.from_cluster(self.cluster),
            # Both roles log in through the proxy; the owner's is there for maintenance SQL.
            secrets=[self.owner_secret, self.app_secret],
            vpc=network.vpc,
            vpc_subnets=network.private_subnets,
            security_groups=[self.proxy_sg],
            require_tls=True,
            iam_auth=False,
            client_password_auth_type=rds.ClientPasswordAuthType.POSTGRES_SCRAM_SHA_256,
            # The connection budget (infra/capacity.py, docs/adr/0047): every container pins one
            # connection, so the proxy may open this share of max_connections (the rest stays
            # for migrations and operators); a client waits at most PROXY_BORROW_TIMEOUT for one,
            # well inside every function's timeout; a frozen container's connection (and the
            # database connection it pins) is dropped after PROXY_IDLE_CLIENT_TIMEOUT, and the
            # container reconnects on its next transaction (shared/db/database.py).
            max_connections_percent=config.proxy_max_connections_percent,
            max_idle_connections_percent=min(config.proxy_max_connections_percent, PROXY_MAX_IDLE_PERCENT),
            borrow_timeout=PROXY_BORROW_TIMEOUT,
            idle_client_timeout=PROXY_IDLE_CLIENT_TIMEOUT,
            debug_logging=False,
        )
        self.cluster.connections.allow_default_port_from(self.proxy_sg, "RDS Proxy to the cluster")
        # With private DNS on, the proxy's own Secrets Manager (and KMS) calls resolve to the
        # endpoints too.
        network.allow_endpoints(self.proxy_sg, "SecretsManager", "Kms")

    # --- ElastiCache Serverless (Valkey) --------------------------------------------------

    def _cache(self, config: StratusConfig, network: Network) -> None:
        self.cache_sg = ec2.SecurityGroup(self, "CacheSg", vpc=network.vpc, allow_all_outbound=False,
                                          description="ElastiCache Serverless (Valkey), TLS only")
        # Serverless caches always encrypt in transit and at rest and only speak cluster
        # mode: the code uses a cluster client with hash-tagged keys (docs/architecture.md §2.6).
        self.cache = elasticache.CfnServerlessCache(
            self, "Cache",
            engine="valkey",
            major_engine_version="8",
            serverless_cache_name=f"{config.prefix}-cache",
            description="Stratus cache: revocations, cancellation flags, rate limits",
            security_group_ids=[self.cache_sg.security_group_id],
            subnet_ids=network.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids,
            cache_usage_limits=elasticache.CfnServerlessCache.CacheUsageLimitsProperty(
                data_storage=elasticache.CfnServerlessCache.DataStorageProperty(maximum=CACHE_MAX_GB, unit="GB")),
            user_group_id=self._cache_users(config),
        )
        self.cache.add_resource_dependency(self._cache_user_group)
        # rediss://: TLS is mandatory on ElastiCache Serverless.
        self.redis_url = Fn.join("", ["rediss://", self.cache.attr_endpoint_address, ":",
                                      self.cache.attr_endpoint_port])

    def _cache_users(self, config: StratusConfig) -> str:
        """RBAC with passwords (docs/adr/0048): once the group is attached, a connection that does
        not AUTH as one of its users can run nothing. Returns the user group's id."""
        def password(construct_id: str, description: str) -> secretsmanager.Secret:
            return secretsmanager.Secret(
                self, construct_id, description=description,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=CACHE_PASSWORD_LENGTH, exclude_punctuation=True, include_space=False))

        def user(construct_id: str, name: str, access: str, secret: secretsmanager.Secret) -> elasticache.CfnUser:
            return elasticache.CfnUser(
                self, construct_id, engine=CACHE_ENGINE,
                user_id=f"{config.prefix}-cache-{name.removeprefix('stratus-')}",
                user_name=name, access_string=access,
                # A {{resolve:secretsmanager:...}} reference: the template never holds the value.
                authentication_mode={"Type": "password", "Passwords": [secret.secret_value.unsafe_unwrap()]})

        self.cache_secret = password("CacheAppPassword",
                                     f"Stratus cache: the password of the {CACHE_APP_USER} Valkey user")
        self.cache_default_secret = password(
            "CacheDefaultPassword", "Stratus cache: the password of the disabled Valkey default user (unused)")
        app = user("CacheAppUser", CACHE_APP_USER, APP_ACCESS_STRING, self.cache_secret)
        default = user("CacheDefaultUser", CACHE_DEFAULT_USER, CACHE_DEFAULT_ACCESS_STRING,
                       self.cache_default_secret)
        self.cache_user = app
        group_id = f"{config.prefix}-cache-users"
        self._cache_user_group = elasticache.CfnUserGroup(
            self, "CacheUsers", engine=CACHE_ENGINE, user_group_id=group_id,
            user_ids=[default.user_id, app.user_id])
        self._cache_user_group.add_resource_dependency(app)
        self._cache_user_group.add_resource_dependency(default)
        return group_id

    # --- S3 ----------------------------------------------------------------------------

    def _buckets(self, config: StratusConfig) -> None:
        common: dict[str, object] = {
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "minimum_tls_version": 1.2,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "removal_policy": RemovalPolicy.RETAIN,
        }
        self.access_logs = s3.Bucket(
            self, "AccessLogs", **{
                **common,
                # CloudFront's standard logs are written with an ACL (bucket-owner-full-control):
                # they need ACLs enabled; the bucket owner still owns every object.
                "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            },  # type: ignore[arg-type]
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))])
        self.uploads = s3.Bucket(
            self, "Uploads", **common,  # type: ignore[arg-type]
            # User documents: versioning protects against an overwrite or a mistaken delete.
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="uploads/",
            # Browsers upload straight to S3 with presigned PUT/POST URLs.
            cors=[s3.CorsRule(
                allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.POST, s3.HttpMethods.GET,
                                 s3.HttpMethods.HEAD],
                allowed_origins=list(config.upload_cors_origins),
                allowed_headers=["*"],
                exposed_headers=["ETag"],
                max_age=3000,
            )],
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30),
                                              abort_incomplete_multipart_upload_after=Duration.days(1))],
        )
        self.payloads = s3.Bucket(
            self, "Payloads", **common,  # type: ignore[arg-type]
            # Machine-written, write-once objects (large run payloads) addressed by id:
            # versioning would only keep garbage.
            versioned=False,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="payloads/",
            lifecycle_rules=[s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1))],
        )
        self.buckets: dict[str, s3.Bucket] = {"uploads": self.uploads, "payloads": self.payloads}

    # --- Secrets -------------------------------------------------------------------------

    def _admin_token(self) -> None:
        # Secrets Manager generates the random part; a template cannot prefix a generated
        # value, so the secret is {"prefix": "pat_", "token": "<random>"} and the platform
        # admin token is prefix + token (docs/adr/0014-platform-admin-token-secret.md).
        self.admin_token = secretsmanager.Secret(
            self, "AdminToken",
            description="Stratus platform admin token: the token is prefix + token",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"prefix": ADMIN_TOKEN_PREFIX}),
                generate_string_key="token",
                password_length=48,
                exclude_punctuation=True,
                include_space=False,
            ),
        )
        self.secrets: dict[str, secretsmanager.ISecret] = {"admin-token": self.admin_token}

    def _provider_keys(self) -> None:
        # The platform's provider API keys, one JSON object ({"OPENAI_API_KEY": "...", ...})
        # read by shared.models.credentials through the Parameters and Secrets extension.
        # Created holding "{}" (not a generated value: the keys come from the providers) and
        # filled by operators with put-secret-value. CloudFormation writes a new value only
        # when the template's SecretString changes, so a deploy leaves the operators' value
        # alone as long as "{}" here never changes (docs/adr/0020-model-access-infrastructure.md).
        self.provider_keys = secretsmanager.Secret(
            self, "ProviderKeys",
            description=('Stratus platform provider API keys: a JSON object such as {"OPENAI_API_KEY": "...", '
                         '"ANTHROPIC_API_KEY": "..."}, set by operators'),
            secret_string_value=SecretValue.unsafe_plain_text(PROVIDER_KEYS_INITIAL),
        )
        self.secrets["provider-keys"] = self.provider_keys

    # --- KMS ---------------------------------------------------------------------------

    def _credentials_key(self) -> None:
        # Tenants' provider credentials are encrypted with this key, bound to the tenant by
        # the encryption context. Its policy names no kms:* and grants no cryptographic use
        # to the account as such: only roles tagged as its users (the functions the catalog
        # grants kms:credentials, infra/functions.py), and only with a tenant_id context.
        name = "credentials"
        tag = f"aws:PrincipalTag/{key_user_tag(name)}"
        account = iam.AccountRootPrincipal()
        policy = iam.PolicyDocument(statements=[
            iam.PolicyStatement(
                sid="KeyAdministrationThroughIam",
                principals=[account], actions=list(KEY_ADMIN_ACTIONS),
                resources=["*"],  # in a key policy, "*" means this key
            ),
            iam.PolicyStatement(
                sid="TenantCredentialsByTaggedFunctionRoles",
                principals=[account], actions=sorted(KEY_ACTIONS.values()),
                resources=["*"],
                conditions={
                    "StringEquals": {tag: KEY_USER_TAG_VALUE},
                    "ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": CREDENTIALS_CONTEXT_KEY},
                },
            ),
        ])
        self.credentials_key = kms.Key(
            self, "CredentialsKey",
            description="Stratus tenants' provider credentials (encryption context tenant_id)",
            enable_key_rotation=True,
            policy=policy,
            # Every stored tenant credential is ciphertext under this key: never delete it with
            # the stack.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.keys: dict[str, CustomerKey] = {
            name: CustomerKey(self.credentials_key, context_keys=(CREDENTIALS_CONTEXT_KEY,))}

    # --- The edge's origin secret ----------------------------------------------------------

    def _origin_secret(self) -> None:
        # CloudFront adds it as a custom origin header on every origin; the authorizer and the
        # apps refuse a request without it, so the execute-api endpoint and the function URLs
        # are no side door past CloudFront (and its WAF). The template holds a dynamic
        # reference, never the value (docs/adr/0047-concurrency-budget-and-side-doors.md).
        self.origin_secret = secretsmanager.Secret(
            self, "OriginSecret",
            description="Stratus edge origin secret: CloudFront sends it in x-stratus-origin-verify",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True, include_space=False),
        )

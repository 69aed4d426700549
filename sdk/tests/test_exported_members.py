from __future__ import annotations

import fabric_platform


def test_all_is_the_curated_public_surface() -> None:
    assert fabric_platform.__all__ == [
        "AsyncEventStream",
        "AsyncFabricClient",
        "AsyncProviderStream",
        "AsyncWorker",
        "EventStream",
        "FabricAPIError",
        "FabricAuthError",
        "FabricBudgetExceededError",
        "FabricClient",
        "FabricClientClosedError",
        "FabricConflictError",
        "FabricConnectionError",
        "FabricError",
        "FabricForbiddenError",
        "FabricNotFoundError",
        "FabricRateLimitError",
        "FabricServerError",
        "FabricSignatureError",
        "FabricTimeoutError",
        "FabricValidationError",
        "FabricWaitTimeout",
        "OperationError",
        "ProviderStream",
        "Step",
        "Worker",
        "__version__",
        "types",
        "webhooks",
    ]


def test_every_exported_name_exists() -> None:
    for name in fabric_platform.__all__:
        assert hasattr(fabric_platform, name), name


def test_exported_classes_present_themselves_as_public() -> None:
    for name in fabric_platform.__all__:
        member = getattr(fabric_platform, name)
        if isinstance(member, type):
            assert member.__module__ == "fabric_platform", name
            assert member.__name__ == name


def test_version() -> None:
    assert fabric_platform.__version__ == "0.1.0"


def test_types_module_exposes_the_response_shapes() -> None:
    from fabric_platform import types

    for name in types.__all__:
        assert hasattr(types, name), name
    for name in ("Job", "JobPage", "JobUsage", "UsageRecord", "HealthStatus", "Event"):
        assert name in types.__all__
    for name in (
        "AuthResponse",
        "AuthUser",
        "WorkflowDefinition",
        "WorkflowNode",
        "WorkflowRun",
        "NodeState",
        "RunLog",
        "BulkCancelResult",
        "RunPage",
        "Organization",
        "Team",
        "Membership",
        "Invitation",
        "Me",
        "MyOrganization",
        "MyTeam",
        "MyPermission",
        "PermissionCheckResult",
        "ApiKey",
        "CreatedApiKey",
        "PermissionGrant",
        "AuditLog",
        "AuditLogPage",
        "OrgSecret",
        "ProviderInfo",
        "ProviderCapability",
        "ProviderExecution",
        "CostEstimate",
        "OrgUsage",
        "UsageRecordPage",
        "UsageDay",
        "Budget",
        "Spending",
        "Gallery",
        "GalleryItem",
        "Webhook",
        "WebhookDelivery",
        "WebhookDeliveryPage",
        "DeletedWebhook",
        "Schedule",
        "ScheduleTrigger",
        "ScheduleHistoryEntry",
        "ScheduleDeleted",
    ):
        assert name in types.__all__


def test_webhooks_module_exposes_the_verification_helpers() -> None:
    from fabric_platform import webhooks

    assert webhooks.__all__ == [
        "DELIVERY_HEADER",
        "EVENT_HEADER",
        "SIGNATURE_256_HEADER",
        "SIGNATURE_HEADER",
        "TIMESTAMP_HEADER",
        "FabricSignatureError",
        "construct_event",
        "verify_signature",
    ]
    assert webhooks.FabricSignatureError is fabric_platform.FabricSignatureError
    assert issubclass(webhooks.FabricSignatureError, fabric_platform.FabricError)

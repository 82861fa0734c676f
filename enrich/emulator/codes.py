"""The error codes the emulator can answer, with the real service's HTTP status and message."""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = ["ERRORS", "ErrorSpec", "error_spec", "missing_parameter_message"]


class ErrorSpec(NamedTuple):
    """HTTP status and message of one API error code."""

    status: int
    message: str


#: Documented CAMS errors first, then the gateway errors every Alibaba Cloud API shares.
ERRORS: Final[dict[str, ErrorSpec]] = {
    # QueryPhoneBusinessProfile's own (api/QueryPhoneBusinessProfile.md)
    "Product.Unsubscript": ErrorSpec(400, "You have not subscribed to the specified product."),
    "Ram.PermissionDeny": ErrorSpec(400, "You are not authorized to perform the operation."),
    "System.LimitControl": ErrorSpec(400, "The system is under flow control."),
    "Unknown.ResourceOwnerId": ErrorSpec(400, "The resource does not belong to the current user."),
    # gateway (sdk-notes.md)
    "InvalidAccessKeyId.NotFound": ErrorSpec(404, "Specified access key is not found."),
    "InvalidAccessKeyId.Inactive": ErrorSpec(400, "Specified access key is disabled."),
    "SignatureDoesNotMatch": ErrorSpec(400, "Specified signature does not match our calculation."),
    "IncompleteSignature": ErrorSpec(
        400, "The request signature does not conform to Aliyun standards."
    ),
    "SignatureNonceUsed": ErrorSpec(400, "Specified signature nonce was used already."),
    "InvalidTimeStamp.Expired": ErrorSpec(400, "Specified time stamp or date value is expired."),
    "InvalidTimeStamp.Format": ErrorSpec(
        400, "Specified time stamp or date value is not well formatted."
    ),
    "InvalidSecurityToken.Expired": ErrorSpec(400, "Specified SecurityToken is expired."),
    "InvalidSecurityToken.Malformed": ErrorSpec(400, "Specified SecurityToken is malformed."),
    "InvalidSecurityToken.MismatchWithAccessKey": ErrorSpec(
        400, "Specified SecurityToken mismatch with the AccessKey."
    ),
    "MissingParameter": ErrorSpec(
        400, "The input parameter that is mandatory for processing this request is not supplied."
    ),
    "InvalidParameter": ErrorSpec(400, "The specified parameter is not valid."),
    "InvalidAction.NotFound": ErrorSpec(
        404, "Specified api is not found, please check your url and method."
    ),
    "InvalidVersion": ErrorSpec(400, "Specified parameter Version is not valid."),
    "Throttling.User": ErrorSpec(429, "Request was denied due to user flow control."),
    "Throttling": ErrorSpec(
        400, "Request was denied due to request throttling, please try again after a while."
    ),
    "InternalError": ErrorSpec(
        500, "The request processing has failed due to some unknown error, exception or failure."
    ),
    "InternalFailure": ErrorSpec(
        500, "The request processing has failed due to some unknown error, exception or failure."
    ),
    "ServiceUnavailable": ErrorSpec(
        503, "The request has failed due to a temporary failure of the server."
    ),
}

_UNKNOWN = ErrorSpec(400, "The request has failed (emulated error code).")


def error_spec(code: str) -> ErrorSpec:
    """Status and message for ``code``; an unknown code is answered with HTTP 400."""
    return ERRORS.get(code, _UNKNOWN)


def missing_parameter_message(name: str) -> str:
    """The gateway's ``MissingParameter`` message naming the missing input."""
    return (
        f'The input parameter "{name}" that is mandatory for processing this request '
        "is not supplied."
    )

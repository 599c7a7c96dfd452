"""What every OneThing workflow shares: the statutory clock, typed activity calls,
retry policies, rejections and the read-model projection writer."""

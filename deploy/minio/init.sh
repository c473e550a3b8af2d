#!/bin/sh
# One-shot MinIO setup for docker-compose.yml (service "minio-init", image minio/mc):
# the bucket, a policy limited to it, and the app's own user with that policy.
# Safe to run again: every step leaves things as they are when already done.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${COURTSIDE_S3_BUCKET:?}" "${COURTSIDE_S3_ACCESS_KEY_ID:?}" "${COURTSIDE_S3_SECRET_ACCESS_KEY:?}"
bucket=$COURTSIDE_S3_BUCKET
policy=courtside-app

mc alias set store http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "store/$bucket"

# ListBucket matters: without it S3 answers 403 instead of 404 for a missing key
# (see S3ObjectStore in core/storage/s3.py). DeleteObject also covers batch deletes.
cat >/tmp/policy.json <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::$bucket"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                 "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::$bucket/*"]
    }
  ]
}
JSON
mc admin policy create store "$policy" /tmp/policy.json
# Adding an existing user sets its secret again, so a changed .env takes effect.
mc admin user add store "$COURTSIDE_S3_ACCESS_KEY_ID" "$COURTSIDE_S3_SECRET_ACCESS_KEY"
if ! mc admin user info store "$COURTSIDE_S3_ACCESS_KEY_ID" | grep -q "$policy"; then
  mc admin policy attach store "$policy" --user "$COURTSIDE_S3_ACCESS_KEY_ID"
fi
echo "minio-init: bucket '$bucket' ready for user '$COURTSIDE_S3_ACCESS_KEY_ID'"

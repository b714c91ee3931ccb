"""/v1.0/files routes."""

from chalice import Blueprint

from chalicelib.api.routing import Router, Service

files = Service("chalicelib.services.files")
bp = Blueprint(__name__)
route = Router(bp)


@route("POST", "/files", "Register a file; answers a presigned S3 POST to upload it (15 minutes)",
       body="FileCreate", returns="File", errors=(400, 401, 413),
       description="Then POST the file to `upload.url` as multipart/form-data: every field of `upload.fields`, "
                   "then the file as the last field, `file`. S3 refuses another size or type. Send it in a "
                   "message as a media `{\"type\": \"file\", \"file_id\": ...}` within 23 hours.")
def create_file(caller, body):
    return files.create_file(caller, body)


@route("GET", "/files/{file_id}", "Get a file; once sent, with a download URL (15 minutes)", returns="File",
       errors=(400, 401, 404))
def get_file(caller, file_id):
    return files.get_file(caller, file_id)


@route("DELETE", "/files/{file_id}", "Delete a file: its object is removed, messages keep their media",
       returns="File", errors=(400, 401, 403, 404))
def delete_file(caller, file_id):
    return files.delete_file(caller, file_id)

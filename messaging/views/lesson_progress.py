"""A learner's lesson progress as a file: export it, import it (on another machine, or into an
account after working signed out)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from messaging.errors import Invalid, LogLabError
from messaging.services import lessons as services
from messaging.views.lessons import lesson_list_context


@require_GET
def progress_export(request: HttpRequest) -> HttpResponse:
    data = services.progress_export(user=request.user, session=request.session)
    response = JsonResponse(data, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = 'attachment; filename="loglab-progress.json"'
    return response


@require_POST
def progress_import(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise Invalid("Choose a progress file to import (one exported from this page).")
        if upload.size > services.MAX_IMPORT_BYTES:
            raise Invalid(
                f"That file cannot be imported: it is larger than "
                f"{services.MAX_IMPORT_BYTES // 1024} KB."
            )
        count = services.progress_import(
            user=request.user, session=request.session, raw=upload.read()
        )
    except LogLabError as error:
        if request.headers.get("Accept", "").startswith("application/json"):
            return JsonResponse({"error": error.code, "message": error.message}, status=400)
        context = {**lesson_list_context(request), "import_error": error.message}
        return render(request, "messaging/lesson_list.html", context, status=400)
    request.session["lesson_import_ok"] = f"Imported the progress of {count} lesson(s)."
    return redirect("lesson_list")

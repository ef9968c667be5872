"""Instructor accounts: sign up, log in, log out, with Django's own auth views and forms.

Students never have accounts (see classroom.py); an account is what lets a person own
classrooms. After logging in or signing up, an instructor lands on "Your classrooms".

Guessing passwords is throttled with the rate limits' shared token buckets
(messaging/infra/rates.py), not a library such as django-axes: the buckets are already shared
by every server process (Redis or the database) and answer 429 as the rest of the app does,
with no extra tables, middleware or authentication backend. Failed log-ins spend from one
bucket per client address and one per username; a successful log-in spends nothing. An empty
bucket refuses the next try before the password is even checked, so the throttle cannot be
used to test passwords. Sign-ups spend from a bucket per address.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods

from messaging.infra.rates import buckets, client_ip, retry_seconds

# Where an instructor lands; `?next=` still wins. (settings.LOGIN_REDIRECT_URL says the same.)
AFTER_LOGIN = reverse_lazy("classroom_list")
# Django's AuthenticationForm's error codes for a wrong username or password.
FAILED_LOGIN_CODES = frozenset({"invalid_login", "inactive"})


def _refill_rate() -> float:
    return 1.0 / float(settings.LOGLAB_LOGIN_REFILL_SECONDS)


def _login_buckets(request: HttpRequest) -> list[tuple[tuple, float]]:
    """The buckets a log-in attempt is counted in, each with its size."""
    found = [(("login-ip", client_ip(request)), settings.LOGLAB_LOGIN_FAILURES_PER_IP)]
    username = request.POST.get("username", "").strip().lower()[:150]
    if username:
        found.append((("login-user", username), settings.LOGLAB_LOGIN_FAILURES_PER_USERNAME))
    return found


def _too_many(request: HttpRequest, template: str, context: dict, wait: float, what: str):
    """429 with the page again: an unbound form (validating the refused one would check its
    password), the username kept, and the reason where the form's errors go."""
    seconds = retry_seconds(wait)
    context["throttled"] = f"Too many {what}. Try again in {seconds} s."
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(seconds)
    return response


def _typed_username(request: HttpRequest) -> dict[str, str]:
    return {"username": request.POST.get("username", "")[:150]}


class ThrottledLoginView(auth_views.LoginView):
    """Django's log-in, refused with 429 once too many wrong passwords were tried."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        rate = _refill_rate()
        wait = max(
            buckets.wait(key, rate=rate, burst=burst) for key, burst in _login_buckets(request)
        )
        if wait:
            form = self.form_class(request, initial=_typed_username(request))
            context = self.get_context_data(form=form)
            what = "failed log-ins for this account or from this address"
            return _too_many(request, self.template_name, context, wait, what)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form) -> HttpResponse:
        codes = {error.code for error in form.non_field_errors().as_data()}
        if codes & FAILED_LOGIN_CODES:
            rate = _refill_rate()
            for key, burst in _login_buckets(self.request):
                buckets.take(key, rate=rate, burst=burst)
        return super().form_invalid(form)


login_view = ThrottledLoginView.as_view(
    template_name="registration/login.html",
    next_page=AFTER_LOGIN,
    redirect_authenticated_user=True,
)
# Django 5 logs out on POST only: a link or a prefetch cannot log anyone out.
logout_view = auth_views.LogoutView.as_view(next_page=reverse_lazy("home"))


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(AFTER_LOGIN)
    form = UserCreationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        wait = buckets.take(
            ("signup-ip", client_ip(request)),
            rate=_refill_rate(),
            burst=settings.LOGLAB_SIGNUPS_PER_IP,
        )
        if wait:
            context = {"form": UserCreationForm(initial=_typed_username(request))}
            what = "sign-ups from this address"
            return _too_many(request, "registration/signup.html", context, wait, what)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(AFTER_LOGIN)
        return render(request, "registration/signup.html", {"form": form}, status=400)
    return render(request, "registration/signup.html", {"form": form})

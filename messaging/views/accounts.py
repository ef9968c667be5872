"""Instructor accounts: sign up, log in, log out, with Django's own auth views and forms.

Students never have accounts (see classroom.py); an account is what lets a person own
classrooms. After logging in or signing up, an instructor lands on "Your classrooms".
"""

from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods

# Where an instructor lands; `?next=` still wins. (settings.LOGIN_REDIRECT_URL says the same.)
AFTER_LOGIN = reverse_lazy("classroom_list")

login_view = auth_views.LoginView.as_view(
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
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(AFTER_LOGIN)
        return render(request, "registration/signup.html", {"form": form}, status=400)
    return render(request, "registration/signup.html", {"form": form})

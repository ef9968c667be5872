"""Instructor accounts and classrooms, included at the root by messaging/urls.py with
`path("", include("messaging.classroom_urls"))`."""

from django.urls import path

from messaging import accounts, classroom

urlpatterns = [
    # /accounts/login/ is Django's default LOGIN_URL, so login_required needs no setting.
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/login/", accounts.login_view, name="login"),
    path("accounts/logout/", accounts.logout_view, name="logout"),
    path("classrooms/", classroom.classroom_list, name="classroom_list"),
    path("classrooms/new/", classroom.classroom_new, name="classroom_new"),
    path("r/<str:code>/present/", classroom.classroom_present, name="classroom_present"),
    path(
        "r/<str:code>/present/students/",
        classroom.classroom_present_students,
        name="classroom_present_students",
    ),
    path("r/<str:code>/me/", classroom.student_me, name="student_me"),
    path("r/<str:code>/me/consumer/", classroom.student_consumer, name="student_consumer"),
    path("j/<str:code>/", classroom.student_join, name="student_join"),
]

"""Instructor accounts and classrooms, included at the root by messaging/urls.py with
`path("", include("messaging.classroom_urls"))`."""

from django.urls import path

from messaging import accounts, classroom, student_views

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
    path("r/<str:code>/present/clock/", classroom.classroom_clock, name="classroom_clock"),
    path("r/<str:code>/present/locks/", classroom.classroom_locks, name="classroom_locks"),
    path("r/<str:code>/present/follow/", classroom.classroom_follow, name="classroom_follow"),
    path("r/<str:code>/present/enlist/", classroom.classroom_enlist, name="classroom_enlist"),
    path("r/<str:code>/present/reset/", classroom.classroom_reset, name="classroom_reset"),
    path(
        "r/<str:code>/present/students/<int:pk>/remove/",
        classroom.classroom_student_remove,
        name="classroom_student_remove",
    ),
    path("r/<str:code>/me/", student_views.student_me, name="student_me"),
    path("r/<str:code>/me/consumer/", student_views.student_consumer, name="student_consumer"),
    path("j/<str:code>/", classroom.student_join, name="student_join"),
]

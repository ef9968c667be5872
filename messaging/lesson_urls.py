"""The lesson pages, included at the root by messaging/urls.py.

A room's lesson endpoints live under `r/<code>/lesson/`: the undo middleware takes no
snapshot there (they are the panel's own buttons, not steps of the lesson).
"""

from django.urls import path

from messaging import lesson_views as views

urlpatterns = [
    path("lessons/", views.lesson_list, name="lesson_list"),
    path("lessons/progress.json", views.progress_export, name="lesson_progress_export"),
    path("lessons/progress/import/", views.progress_import, name="lesson_progress_import"),
    path("lessons/<slug:slug>/", views.lesson_start, name="lesson_start"),
    path("r/<str:code>/lesson/", views.lesson_room, name="lesson_room"),
    path("r/<str:code>/lesson/panel/", views.lesson_panel, name="lesson_panel"),
    path("r/<str:code>/lesson/hint/", views.lesson_hint, name="lesson_hint"),
    path("r/<str:code>/lesson/solution/", views.lesson_solution, name="lesson_solution"),
    path("r/<str:code>/lesson/predict/", views.lesson_predict, name="lesson_predict"),
    path("r/<str:code>/lesson/do/", views.lesson_do, name="lesson_do"),
    path("r/<str:code>/lesson/undo/", views.lesson_undo, name="lesson_undo"),
    path("r/<str:code>/lesson/reset/", views.lesson_reset, name="lesson_reset"),
    path("r/<str:code>/lesson/quiz/", views.lesson_quiz, name="lesson_quiz"),
    path("r/<str:code>/lesson/follow/", views.lesson_follow, name="lesson_follow"),
    path("r/<str:code>/lesson/present/", views.lesson_present, name="lesson_present"),
    path("r/<str:code>/lesson/run/", views.lesson_run, name="lesson_run"),
    path("r/<str:code>/lesson/next/", views.lesson_next_stage, name="lesson_next_stage"),
    path("r/<str:code>/lesson/stop/", views.lesson_stop, name="lesson_stop"),
]

// The console's screens. Each role starts on its own screen; the chart screens (and ECharts with
// them) load only when opened.
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { homeOf, role, session } from './session'

const routes: RouteRecordRaw[] = [
  { path: '/login', component: () => import('./views/LoginView.vue'), meta: { anonymous: true } },
  { path: '/', redirect: () => (session.token() ? homeOf(role.value) : '/login') },
  { path: '/projects', component: () => import('./views/ProjectsView.vue') },
  { path: '/projects/new', component: () => import('./views/ProjectFormView.vue') },
  { path: '/projects/:code', component: () => import('./views/ProjectView.vue'), props: true },
  {
    path: '/projects/:code/tasks/:taskId',
    component: () => import('./views/TaskView.vue'),
    props: true,
  },
  { path: '/queue', component: () => import('./views/QueueView.vue') },
  { path: '/board', component: () => import('./views/BoardView.vue') },
  { path: '/figures', component: () => import('./views/FiguresView.vue') },
  { path: '/follow-ups', component: () => import('./views/FollowUpsView.vue') },
  { path: '/mine', component: () => import('./views/MineView.vue') },
  { path: '/setups', component: () => import('./views/SetupsView.vue') },
  { path: '/setup-queue', component: () => import('./views/SetupQueueView.vue') },
  { path: '/password', component: () => import('./views/PasswordView.vue') },
  { path: '/accounts', component: () => import('./views/AccountsView.vue') },
  { path: '/:rest(.*)*', component: () => import('./views/NotFoundView.vue') },
]

export const router = createRouter({ history: createWebHistory('/console/'), routes })

router.beforeEach((to) => {
  const signedIn = session.token() !== null
  if (!to.meta.anonymous && !signedIn) {
    return { path: '/login', query: to.fullPath !== '/' ? { next: to.fullPath } : {} }
  }
  if (to.path === '/login' && signedIn) return homeOf(role.value)
  return true
})
